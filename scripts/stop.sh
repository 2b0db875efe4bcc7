#!/usr/bin/env bash
# Stops the dev servers started by scripts/dev.sh (the private MariaDB and Redis keep running).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for pidfile in "$BENCH_DIR"/config/pids/sa-*.pid; do
	[ -f "$pidfile" ] || continue
	kill -- -"$(cat "$pidfile")" 2>/dev/null || kill "$(cat "$pidfile")" 2>/dev/null || true
	rm -f "$pidfile"
done
log "dev servers stopped"
