#!/usr/bin/env bash
# README command 2: the whole test suite on a throwaway site made in this run, then the linters.
# Exits non-zero on any failure, and when no test ran.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_tools
ensure_mariadb
ensure_bench
ensure_browser
ensure_semgrep
ensure_schemathesis
ensure_js_linters

SITE=${SA_TEST_SITE:-sa-test-$(date +%s)-$$.localhost}
OUT_DIR=${SA_TEST_OUTPUT:-$REPO_DIR/test-output}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/run-tests.log"
# The dev servers' worker takes jobs from the bench-wide queue, the test site's included: pause them.
dev_was_running=0
for pidfile in "$BENCH_DIR"/config/pids/sa-*.pid; do
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && dev_was_running=1
done
if [ "$dev_was_running" = 1 ]; then
	log "pausing the dev servers during the tests (restarted afterwards)"
	bash "$REPO_DIR/scripts/stop.sh"
fi
cleanup() {
	[ "${SA_KEEP_SITE:-0}" = 1 ] || drop_site "$SITE"
	[ "$dev_was_running" = 1 ] && bash "$REPO_DIR/scripts/dev.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

started=$(date +%s)
log "creating throwaway site $SITE (erpnext, payments, sales_automation)"
new_site "$SITE" >"$OUT_DIR/new-site.log" 2>&1 || { tail -40 "$OUT_DIR/new-site.log"; die "bench new-site failed; see $OUT_DIR/new-site.log"; }
bench_cmd --site "$SITE" set-config allow_tests true >/dev/null
bench_cmd --site "$SITE" set-config sa_test_output "$OUT_DIR" >/dev/null
bench_cmd --site "$SITE" set-config sa_schemathesis "$SA_HOME/schemathesis-venv/bin/schemathesis" >/dev/null
log "site ready in $(($(date +%s) - started)) s; running the tests"

set +e
# CI=true: frappe's run-tests exits 0 on failures without it.
CI=true bench_cmd --site "$SITE" run-tests --app sales_automation ${SA_TEST_ARGS:-} 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e

ran=$(sed -n 's/^Ran \([0-9][0-9]*\) tests\{0,1\} in.*/\1/p' "$LOG" | tail -1)
if [ "$status" != 0 ] || ! grep -q '^OK' "$LOG"; then
	die "tests failed (exit $status); log in $LOG"
fi
if [ -z "$ran" ] || [ "$ran" = 0 ]; then
	die "no test ran; log in $LOG"
fi

run_linters

failed=0
echo "$ran passed, $failed failed"
log "done in $(($(date +%s) - started)) s"
