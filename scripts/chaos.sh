#!/usr/bin/env bash
# make chaos: runs Pulse (all roles, redis-server with AOF) under load on
# 127.0.0.1 while faults are injected together (SIGKILL of the server,
# redis-server killed and restarted, redis-server paused, the stream
# saturated, WebSocket clients that never read, a hostile sender: made-up
# sites, hostile timestamps, long paths, bad bodies, a gzip bomb), then
# prints a table:
# faults injected, events acknowledged, events counted, difference. Exits
# non-zero when the difference is not 0 or any aggregate differs from the
# ground truth. Bounded: CHAOS_DURATION of faults (default 80s), then at
# most two minutes of recovery; about two and a half minutes in all.
# PULSE_CHAOS_SEED=N repeats a run's random choices (kinds, gaps, pauses).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null 2>&1 || scripts/deps.sh test
dur=${CHAOS_DURATION:-80s}
go test -count=1 -timeout 6m -run '^TestChaos$' -v ./systemtest -chaos="$dur" 2>&1 |
	grep -v -e '^=== RUN' -e '^        {"time"'
exit "${PIPESTATUS[0]}"
