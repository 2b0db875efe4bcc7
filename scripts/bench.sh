#!/usr/bin/env bash
# README command 3: the side-by-side benchmark against the dev site; results in benchmarks/results/.
# Options through the environment: BENCH_ORDERS (1000), BENCH_REPS (50), BENCH_LINES (1,10,100).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SITE=${SA_DEV_SITE:-sales-automation.localhost}
bash "$REPO_DIR/scripts/dev.sh" >/dev/null
# the benchmark runs its own web server and exactly BENCH_WORKERS workers: stop the dev ones meanwhile
bash "$REPO_DIR/scripts/stop.sh"
"$BENCH_DIR/env/bin/python" -c "import matplotlib" 2>/dev/null ||
	"$BENCH_DIR/env/bin/pip" install --quiet matplotlib
kwargs=$(printf '{"orders": %s, "reps": %s, "lines": "%s", "workers": %s, "out_dir": "%s"}' \
	"${BENCH_ORDERS:-1000}" "${BENCH_REPS:-50}" "${BENCH_LINES:-1,10,100}" "${BENCH_WORKERS:-2}" \
	"$REPO_DIR/benchmarks/results")
status=0
bench_cmd --site "$SITE" execute sales_automation.benchmarks.run --kwargs "$kwargs" >/dev/null || status=$?
cat "$REPO_DIR/benchmarks/results/results.md" 2>/dev/null || true
bash "$REPO_DIR/scripts/dev.sh" >/dev/null
log "dev servers restarted; results in benchmarks/results/"
exit $status
