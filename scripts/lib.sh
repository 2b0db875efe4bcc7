#!/usr/bin/env bash
# Shared helpers for scripts/dev.sh and scripts/test.sh: a private MariaDB, a version-15 bench
# built the standard way (bench init / bench get-app from upstream), and this app linked into it.
#
# Everything is configurable through the environment; see README.md "Environment".
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SA_HOME=${SA_HOME:-$HOME/.sales_automation}
BENCH_DIR=${SA_BENCH_DIR:-$SA_HOME/frappe-bench}
FRAPPE_BRANCH=${FRAPPE_BRANCH:-version-15}
FRAPPE_REPO=${FRAPPE_REPO:-https://github.com/frappe/frappe}
ERPNEXT_REPO=${ERPNEXT_REPO:-https://github.com/frappe/erpnext}
PAYMENTS_REPO=${PAYMENTS_REPO:-https://github.com/frappe/payments}
PYTHON=${SA_PYTHON:-python3}
DB_DIR=${SA_DB_DIR:-$SA_HOME/mariadb}
DB_PORT=${SA_DB_PORT:-3307}
DB_ROOT_PASSWORD=${SA_DB_ROOT_PASSWORD:-sales_automation}
ADMIN_PASSWORD=${SA_ADMIN_PASSWORD:-admin}
# The linters, one version each, the same in .pre-commit-config.yaml and .github/workflows
RUFF_VERSION=0.17.6
SEMGREP_VERSION=1.185.0
# the contract test's fuzzer (tests/test_contract.py)
SCHEMATHESIS_VERSION=4.32.5
SEMGREP_RULES_REPO=${SEMGREP_RULES_REPO:-https://github.com/frappe/semgrep-rules}

log() { printf '\033[1;34m[sales_automation]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[sales_automation] %s\033[0m\n' "$*" >&2; exit 2; }

bench_cmd() { (cd "$BENCH_DIR" && bench "$@"); }

ensure_tools() {
	command -v git >/dev/null || die "git is missing: install it (apt-get install git)."
	command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] ||
		die "MariaDB server is missing: install it (apt-get install mariadb-server)."
	command -v redis-server >/dev/null || die "Redis is missing: install it (apt-get install redis-server)."
	command -v node >/dev/null || die "Node.js is missing: install Node 18 or 20."
	if ! command -v yarn >/dev/null; then
		log "installing yarn 1 (npm i -g yarn@1)"
		npm install --global --silent yarn@1 >/dev/null
	fi
	if ! command -v bench >/dev/null; then
		log "installing frappe-bench (pip install frappe-bench)"
		"$PYTHON" -m pip install --quiet frappe-bench
	fi
	command -v bench >/dev/null || die "bench is not on PATH after 'pip install frappe-bench': add pip's script dir to PATH."
}

# One clear line, not a traceback, when an upstream repository cannot be reached.
check_upstream() {
	local name=$1 url=$2 var=$3
	if ! GIT_TERMINAL_PROMPT=0 timeout 60 git ls-remote --exit-code --heads "$url" "$FRAPPE_BRANCH" >/dev/null 2>&1; then
		die "cannot reach $name at $url (branch $FRAPPE_BRANCH): set $var to a reachable URL or path (or map it with git's url.<base>.insteadOf) and run again."
	fi
}

mysql_root() {
	mariadb --protocol=TCP -h 127.0.0.1 -P "$DB_PORT" -uroot -p"$DB_ROOT_PASSWORD" "$@"
}

# A private MariaDB (own datadir, socket and port) configured as Frappe requires, so the system
# server is never touched. Reused when already running.
ensure_mariadb() {
	if mysql_root -e "select 1" >/dev/null 2>&1; then
		return
	fi
	local mariadbd
	mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
	mkdir -p "$DB_DIR"
	local fresh=0
	if [ ! -d "$DB_DIR/data/mysql" ]; then
		log "initialising a private MariaDB in $DB_DIR (port $DB_PORT)"
		mariadb-install-db --no-defaults --datadir="$DB_DIR/data" --user="$(id -un)" \
			--auth-root-authentication-method=normal --skip-test-db >"$DB_DIR/install.log" 2>&1 ||
			die "mariadb-install-db failed; see $DB_DIR/install.log"
		fresh=1
	fi
	log "starting the private MariaDB on 127.0.0.1:$DB_PORT"
	setsid nohup "$mariadbd" --no-defaults --datadir="$DB_DIR/data" --user="$(id -un)" \
		--port="$DB_PORT" --bind-address=127.0.0.1 --socket="$DB_DIR/mysqld.sock" \
		--pid-file="$DB_DIR/mysqld.pid" --log-error="$DB_DIR/error.log" \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
		--skip-character-set-client-handshake --skip-name-resolve \
		--innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-size=1G \
		--max-connections=500 --skip-log-bin >/dev/null 2>&1 < /dev/null &
	local i
	for i in $(seq 1 60); do
		if mariadb --socket="$DB_DIR/mysqld.sock" -uroot -e "select 1" >/dev/null 2>&1 ||
			mysql_root -e "select 1" >/dev/null 2>&1; then
			break
		fi
		sleep 1
	done
	if [ "$fresh" = 1 ]; then
		mariadb --socket="$DB_DIR/mysqld.sock" -uroot <<-SQL
			ALTER USER 'root'@'localhost' IDENTIFIED BY '$DB_ROOT_PASSWORD';
			CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
			ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$DB_ROOT_PASSWORD';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
			FLUSH PRIVILEGES;
		SQL
	fi
	mysql_root -e "select 1" >/dev/null 2>&1 || die "the private MariaDB did not come up; see $DB_DIR/error.log"
}

# The bench's own Redis servers (ports from its config/redis_*.conf), started when not running.
ensure_redis() {
	local conf port
	for conf in "$BENCH_DIR"/config/redis_cache.conf "$BENCH_DIR"/config/redis_queue.conf; do
		port=$(awk '/^port/ {print $2}' "$conf")
		if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
			(cd "$BENCH_DIR/config" && redis-server "$conf" --daemonize yes >/dev/null)
		fi
	done
}

bench_has_app() { [ -e "$BENCH_DIR/apps/$1" ] && grep -qx "$1" "$BENCH_DIR/sites/apps.txt" 2>/dev/null; }

# bench init + get-app payments + get-app erpnext, the standard way, from the upstream repositories.
ensure_bench() {
	if [ ! -f "$BENCH_DIR/sites/apps.txt" ] || ! bench_has_app frappe; then
		check_upstream frappe "$FRAPPE_REPO" FRAPPE_REPO
		log "creating a bench in $BENCH_DIR (frappe $FRAPPE_BRANCH; takes several minutes)"
		rm -rf "$BENCH_DIR"
		mkdir -p "$(dirname "$BENCH_DIR")"
		# bench refuses to run as root unless the directory it runs from names a frappe_user.
		local parent
		parent=$(dirname "$BENCH_DIR")
		if [ "$(id -u)" = 0 ] && [ ! -f "$parent/sites/common_site_config.json" ]; then
			mkdir -p "$parent/sites"
			printf '{"frappe_user": "%s"}\n' "$(id -un)" >"$parent/sites/common_site_config.json"
		fi
		(cd "$parent" && bench init --no-backups --frappe-path "$FRAPPE_REPO" --frappe-branch "$FRAPPE_BRANCH" \
			--python "$(command -v "$PYTHON")" "$(basename "$BENCH_DIR")") ||
			die "bench init failed (see the output above)."
	fi
	# frappe's dropbox dependency imports pkg_resources, gone from setuptools 81.
	"$BENCH_DIR/env/bin/python" -c "import pkg_resources" >/dev/null 2>&1 ||
		"$BENCH_DIR/env/bin/pip" install --quiet "setuptools<81"
	if ! bench_has_app payments; then
		check_upstream payments "$PAYMENTS_REPO" PAYMENTS_REPO
		log "bench get-app payments"
		bench_cmd get-app --branch "$FRAPPE_BRANCH" "$PAYMENTS_REPO" || die "bench get-app payments failed."
	fi
	if ! bench_has_app erpnext; then
		check_upstream erpnext "$ERPNEXT_REPO" ERPNEXT_REPO
		log "bench get-app erpnext"
		bench_cmd get-app --branch "$FRAPPE_BRANCH" "$ERPNEXT_REPO" || die "bench get-app erpnext failed."
	fi
	bench_cmd set-config -g db_host 127.0.0.1 >/dev/null
	bench_cmd set-config -g db_port "$DB_PORT" >/dev/null
	bench_cmd set-config -g root_password "$DB_ROOT_PASSWORD" >/dev/null
	[ "$("$BENCH_DIR/env/bin/ruff" --version 2>/dev/null)" = "ruff $RUFF_VERSION" ] ||
		"$BENCH_DIR/env/bin/pip" install --quiet "ruff==$RUFF_VERSION"
	# the benchmark's profile of its one-call variant (also in its tiny run in the tests)
	"$BENCH_DIR/env/bin/python" -c "import pyinstrument" 2>/dev/null ||
		"$BENCH_DIR/env/bin/pip" install --quiet "pyinstrument>=5,<6"
	link_app
	ensure_redis
}

# This checkout is the app the bench runs: apps/sales_automation is a link to it.
link_app() {
	local target
	target=$(readlink -f "$BENCH_DIR/apps/sales_automation" 2>/dev/null || true)
	if [ "$target" != "$REPO_DIR" ] || ! bench_has_app sales_automation; then
		log "linking this checkout into the bench as apps/sales_automation"
		rm -rf "$BENCH_DIR/apps/sales_automation"
		ln -s "$REPO_DIR" "$BENCH_DIR/apps/sales_automation"
		"$BENCH_DIR/env/bin/pip" install --quiet --no-deps -e "$BENCH_DIR/apps/sales_automation"
		if ! grep -qx sales_automation "$BENCH_DIR/sites/apps.txt"; then
			sed -i -e '$a\' "$BENCH_DIR/sites/apps.txt"
			echo sales_automation >>"$BENCH_DIR/sites/apps.txt"
		fi
	fi
}

# For the desk tests: Debian's chromium (no browser download), playwright-core as pinned in
# browser_tests/package-lock.json, and the bench's built desk assets.
ensure_browser() {
	local chromium=${SA_CHROMIUM:-/usr/bin/chromium} sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	if [ ! -x "$chromium" ]; then
		log "installing Debian's chromium for the browser tests (apt-get install chromium)"
		mkdir -p "$SA_HOME"
		{ $sudo apt-get install -y --no-install-recommends chromium ||
			{ $sudo apt-get update && $sudo apt-get install -y --no-install-recommends chromium; }; } \
			>"$SA_HOME/apt-chromium.log" 2>&1 || die "could not install chromium; see $SA_HOME/apt-chromium.log"
	fi
	local tests_dir="$REPO_DIR/browser_tests"
	if [ ! -d "$tests_dir/node_modules/playwright-core" ] ||
		[ "$tests_dir/package-lock.json" -nt "$tests_dir/node_modules/.package-lock.json" ]; then
		log "installing playwright-core for the browser tests (npm ci)"
		(cd "$tests_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
			die "npm ci in browser_tests failed"
	fi
	if [ ! -f "$BENCH_DIR/sites/assets/assets.json" ]; then
		log "building the desk assets (bench build)"
		bench_cmd build >/dev/null || die "bench build failed"
	fi
}

# Frappe's semgrep rules, from their upstream repository as the apps are, and semgrep in a venv of its
# own (its pins would fight frappe's in the bench env).
ensure_semgrep() {
	local venv="$SA_HOME/semgrep-venv" rules="$SA_HOME/semgrep-rules"
	if [ "$("$venv/bin/semgrep" --version 2>/dev/null)" != "$SEMGREP_VERSION" ]; then
		log "installing semgrep $SEMGREP_VERSION (its own venv)"
		"$PYTHON" -m venv "$venv" && "$venv/bin/pip" install --quiet "semgrep==$SEMGREP_VERSION" ||
			die "could not install semgrep"
	fi
	if [ ! -d "$rules/.git" ]; then
		GIT_TERMINAL_PROMPT=0 git clone --quiet --depth 1 "$SEMGREP_RULES_REPO" "$rules" ||
			die "cannot reach Frappe's semgrep rules at $SEMGREP_RULES_REPO: set SEMGREP_RULES_REPO (or map it with git's url.<base>.insteadOf)"
	else
		GIT_TERMINAL_PROMPT=0 git -C "$rules" pull --quiet --ff-only >/dev/null 2>&1 || true
	fi
}

# schemathesis for the contract test (tests/test_contract.py), in a venv of its own as semgrep is
ensure_schemathesis() {
	local venv="$SA_HOME/schemathesis-venv"
	if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
		log "installing schemathesis $SCHEMATHESIS_VERSION (its own venv)"
		"$PYTHON" -m venv "$venv" && "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" ||
			die "could not install schemathesis"
	fi
}

# prettier and eslint as Frappe's app scaffold pins them (package.json, package-lock.json)
ensure_js_linters() {
	if [ ! -x "$REPO_DIR/node_modules/.bin/eslint" ] ||
		[ "$REPO_DIR/package-lock.json" -nt "$REPO_DIR/node_modules/.package-lock.json" ]; then
		log "installing prettier and eslint (npm ci)"
		(cd "$REPO_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
	fi
}

# The same linters as CI: ruff (lint and format), Frappe's semgrep rules, prettier and eslint.
run_linters() {
	log "ruff check / ruff format --check / semgrep (Frappe's rules) / prettier / eslint"
	"$BENCH_DIR/env/bin/ruff" check "$REPO_DIR"
	"$BENCH_DIR/env/bin/ruff" format --check "$REPO_DIR"
	"$SA_HOME/semgrep-venv/bin/semgrep" scan --config "$SA_HOME/semgrep-rules/rules" --metrics=off \
		--error --quiet --disable-version-check "$REPO_DIR/sales_automation"
	(cd "$REPO_DIR" && npm run --silent lint)
}

site_exists() { [ -f "$BENCH_DIR/sites/$1/site_config.json" ]; }

# A new site with erpnext, payments and this app, as a person would make it. The time zone (UTC, as the
# demo's setup wizard sets it) comes before the apps: until it is set, Frappe's clock reads Asia/Kolkata
# and the Scheduled Job Types made on it would start hours in the future. bench new-site has no option
# for it, hence frappe alone first; frappe's own jobs, made before, are repaired once this app is in.
new_site() {
	local site=$1
	bench_cmd new-site "$site" --db-root-username root --db-root-password "$DB_ROOT_PASSWORD" \
		--mariadb-user-host-login-scope=% --admin-password "$ADMIN_PASSWORD"
	# the value alone: a save of System Settings would refuse its other fields, which the setup wizard fills
	bench_cmd --site "$site" execute frappe.db.set_single_value \
		--args '["System Settings", "time_zone", "UTC"]' >/dev/null
	bench_cmd --site "$site" install-app erpnext payments sales_automation
	bench_cmd --site "$site" execute sales_automation.setup.scheduler.repair_all_job_schedules >/dev/null
}

drop_site() {
	local site=$1
	site_exists "$site" || return 0
	bench_cmd drop-site "$site" --db-root-username root --db-root-password "$DB_ROOT_PASSWORD" \
		--force --no-backup >/dev/null 2>&1 || log "could not drop site $site"
	rm -rf "$BENCH_DIR/archived/sites/$site"
}
