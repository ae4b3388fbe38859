#!/usr/bin/env bash
# Ingest against a bare handler, in one run: builds pulse, starts the bare
# net/http 204 baseline (`pulse bench baseline-server`) and `pulse serve
# --roles ingest` on loopback, and runs wrk against each with 1-event and
# 50-event bodies (one.lua, fifty.lua: fresh ids in every request;
# fifty-fixed.lua: one fixed body per thread). For each phase it prints requests/s,
# events/s and the server's CPU per request and per event, read from
# /proc/PID/stat (utime+stime) before and after the phase, so the figure
# holds on a shared machine where wall-clock rates are noisy.
#
# Environment: PORT_BASE (default 18100; uses PORT_BASE+1..+3), DURATION
# (wrk -d, default 5s), THREADS (default 2), CONNS (default 64), PULSE_BIN
# (a built binary; default: go build into a temporary directory).
# Needs wrk (Debian: apt-get install wrk). Everything it starts is killed
# on exit. CPU per request depends on the rate reached (the stream shares
# one fdatasync between the requests waiting for it), so compare builds in
# runs on an equally quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=scripts/bench
port=${PORT_BASE:-18100}
dur=${DURATION:-5s}
threads=${THREADS:-2}
conns=${CONNS:-64}
command -v wrk >/dev/null || { echo "ingest-wrk: wrk not found (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

bin=${PULSE_BIN:-}
if [ -z "$bin" ]; then
	bin=$tmp/pulse
	go build -o "$bin" ./cmd/pulse
fi

base_addr=127.0.0.1:$((port + 1))
pulse_addr=127.0.0.1:$((port + 2))
admin_addr=127.0.0.1:$((port + 3))
"$bin" bench baseline-server --addr "$base_addr" 2>"$tmp/baseline.log" &
pids+=($!)
base_pid=$!
mkdir "$tmp/data"
"$bin" serve --data "$tmp/data" --roles ingest --addr "$pulse_addr" --admin-addr "$admin_addr" \
	--rate-ip -1 --rate-site -1 --sites bench --log-level warn >"$tmp/pulse.log" 2>&1 &
pids+=($!)
pulse_pid=$!

wait_up() { # addr
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://$1/" && return 0
		sleep 0.1
	done
	echo "ingest-wrk: nothing answers on $1" >&2
	cat "$tmp"/*.log >&2
	exit 1
}
wait_up "$base_addr"
wait_up "$pulse_addr"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# phase NAME PID ADDR SCRIPT EVENTS_PER_REQUEST
phase() {
	local t0 t1 out reqs rps non2xx
	t0=$(ticks "$2")
	out=$(wrk -t"$threads" -c"$conns" -d"$dur" -s "$here/$4" "http://$3/")
	t1=$(ticks "$2")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	awk -v name="$1" -v reqs="$reqs" -v rps="$rps" -v n="$5" -v dt=$((t1 - t0)) -v hz="$hz" -v bad="${non2xx:-0}" 'BEGIN {
		cpu = dt / hz * 1e6
		printf "%-16s %10.0f %12.0f %10.1f %10.2f %8s\n", name, rps, rps * n, cpu / reqs, cpu / (reqs * n), bad
	}'
}

printf "%-16s %10s %12s %10s %10s %8s\n" phase "req/s" "events/s" "µs/req" "µs/event" "non-2xx"
# Warm up both servers (connections, pools, page cache) before measuring.
wrk -t1 -c8 -d1s -s "$here/one.lua" "http://$base_addr/" >/dev/null
wrk -t1 -c8 -d1s -s "$here/one.lua" "http://$pulse_addr/" >/dev/null
phase bare-1 "$base_pid" "$base_addr" one.lua 1
phase pulse-1 "$pulse_pid" "$pulse_addr" one.lua 1
phase bare-50 "$base_pid" "$base_addr" fifty.lua 50
phase pulse-50 "$pulse_pid" "$pulse_addr" fifty.lua 50
# The same bodies fixed per thread: wrk runs no Lua per request, so the
# load tool takes less of the two cores (about 1.5 µs an event less).
phase bare-50-fixed "$base_pid" "$base_addr" fifty-fixed.lua 50
phase pulse-50-fixed "$pulse_pid" "$pulse_addr" fifty-fixed.lua 50
