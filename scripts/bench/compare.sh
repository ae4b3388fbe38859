#!/usr/bin/env bash
# Every figure of docs/benchmarks.md "Close to the machine" in one run, two
# builds side by side: compare.sh BEFORE_BIN AFTER_BIN. Ingest (wrk, beside
# the bare handler), the whole default server (bench e2e at 50k offered on
# both; at 150k embedded and 200k redis-server on the after build), fan-out
# beside Centrifugo, and a CPU and heap profile of the after build at 50k.
# Run it on a quiet machine; it takes about 9 minutes. Logs and profiles go
# to OUT (default: a new temporary directory). Needs wrk, redis-server and
# Centrifugo (see pulse bench fanout --help).
set -u
[ $# -eq 2 ] || { echo "usage: compare.sh BEFORE_BIN AFTER_BIN" >&2; exit 2; }
B=$1; A=$2
out=${OUT:-$(mktemp -d)}
cd "$(dirname "$0")/../.."
echo "== start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) logs in $out"
for r in 1 2; do
  for s in before after; do
    bin=$B; [ $s = after ] && bin=$A
    echo "== ingest-wrk $s round $r $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    PULSE_BIN=$bin scripts/bench/ingest-wrk.sh
  done
done
for s in before after; do
  bin=$B; [ $s = after ] && bin=$A
  echo "== e2e 50k $s $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $bin bench e2e --rate 50000 --duration 30s 2>$out/e2e-$s.log
done
echo "== e2e capacity after embedded 150k $(date -u +%T)"
$A bench e2e --rate 150000 --duration 20s --redis embedded 2>$out/e2e-150.log
echo "== e2e capacity after redis 200k $(date -u +%T)"
$A bench e2e --rate 200000 --duration 20s --redis redis 2>$out/e2e-200.log
for s in before after; do
  bin=$B; [ $s = after ] && bin=$A
  echo "== fanout $s $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $bin bench fanout --clients 5000 --rate 20 --duration 10s 2>$out/fanout-$s.log
done

echo "== profile after e2e 50k embedded $(date -u +%T)"
$A bench e2e --rate 50000 --duration 25s --redis embedded --admin-addr 127.0.0.1:18903 >$out/e2e-prof.out 2>$out/e2e-prof.log &
bp=$!
sleep 14
curl -s -o $out/e2e-cpu.prof "http://127.0.0.1:18903/debug/pprof/profile?seconds=10"
curl -s -o $out/e2e-heap.prof "http://127.0.0.1:18903/debug/pprof/heap"
wait $bp
cat $out/e2e-prof.out
echo "== profile done $(date -u +%T)"
echo "== end $(date -u +%T)"
