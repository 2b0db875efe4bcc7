#!/usr/bin/env bash
# README command 1: a local ERPNext site with this app and demo data, served on 127.0.0.1:8000.
# A second run reuses the bench, the site and the running servers.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SITE=${SA_DEV_SITE:-sales-automation.localhost}
PORT=${SA_DEV_PORT:-8000}

ensure_tools
ensure_mariadb
ensure_bench

if ! site_exists "$SITE"; then
	log "creating site $SITE (erpnext, payments, sales_automation; about a minute)"
	new_site "$SITE" || die "bench new-site failed (see the output above)."
	bench_cmd --site "$SITE" enable-scheduler >/dev/null
else
	bench_cmd --site "$SITE" list-apps 2>/dev/null | grep -q '^sales_automation' ||
		bench_cmd --site "$SITE" install-app sales_automation
	# migrate only when the app's schema, patches or hooks changed since the last run
	stamp=$(cd "$REPO_DIR" && find sales_automation -name '*.json' -o -name patches.txt -o -name hooks.py |
		sort | xargs sha1sum | sha1sum | cut -c1-40)
	if [ "$stamp" != "$(cat "$BENCH_DIR/sites/$SITE/.sa_migrated" 2>/dev/null)" ]; then
		log "migrating $SITE"
		bench_cmd --site "$SITE" migrate >/dev/null
		echo "$stamp" >"$BENCH_DIR/sites/$SITE/.sa_migrated"
	fi
fi
bench_cmd --site "$SITE" set-config host_name "http://127.0.0.1:$PORT" >/dev/null

log "loading demo data (company, accounts, stocked items, customer, API user)"
credentials=$(bench_cmd --site "$SITE" execute sales_automation.setup.demo.setup_demo | tail -1)

# web, worker and scheduler in the background, each once
start_daemon() {
	local name=$1
	shift
	local pidfile="$BENCH_DIR/config/pids/sa-$name.pid"
	mkdir -p "$(dirname "$pidfile")"
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		return
	fi
	# the process records its own pid and leads its own process group, so `make stop` can end it whole
	(cd "$BENCH_DIR/sites" && setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
		>"$BENCH_DIR/logs/sa-$name.log" 2>&1 </dev/null &)
}
# What `bench start` runs. Frappe's own dev server pins the site, so plain 127.0.0.1 URLs work;
# DEV_SERVER (set by `bench start` too) sends the desk's realtime connection to socketio_port, where
# Frappe's realtime server relays the events the app publishes (a run's progress); FRAPPE_SITE names
# the site for connections from 127.0.0.1.
start_daemon web env DEV_SERVER=true "$BENCH_DIR/env/bin/python" -m frappe.utils.bench_helper frappe \
	--site "$SITE" serve --port "$PORT" --noreload
start_daemon socketio env FRAPPE_SITE="$SITE" node "$BENCH_DIR/apps/frappe/socketio.js"
start_daemon worker "$BENCH_DIR/env/bin/python" -m frappe.utils.bench_helper frappe worker --queue default,short,long
start_daemon schedule "$BENCH_DIR/env/bin/python" -m frappe.utils.bench_helper frappe schedule

for _ in $(seq 1 60); do
	curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/method/ping" && break
	sleep 1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/method/ping" ||
	die "the web server did not answer on 127.0.0.1:$PORT; see $BENCH_DIR/logs/sa-web.log"

"$BENCH_DIR/env/bin/python" - "$credentials" "$SITE" "$PORT" "$ADMIN_PASSWORD" <<'PY'
import json, sys
creds, site, port, admin = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
print(f"""
  sales_automation dev site is up
  URL:        http://127.0.0.1:{port}   (site {site})
  Desk login: Administrator / {admin}
  API user:   {creds['user']}
  API token:  {creds['api_key']}:{creds['api_secret']}
  Try:        curl -H "Authorization: token {creds['api_key']}:{creds['api_secret']}" http://127.0.0.1:{port}/api/method/frappe.auth.get_logged_user
  Stop:       make stop
""")
PY
