#!/usr/bin/env bash
# kinesis-local.sh installs and runs kinesis-local (kinesis-mock on npm), the
# Kinesis Data Streams emulator the stream/kinesis integration tests use.
#
#   scripts/kinesis-local.sh install      install into the cache dir (skipped when present)
#   scripts/kinesis-local.sh start PORT   install if needed, serve plain HTTP on PORT,
#                                         print "ready" once /healthcheck answers, and
#                                         run until killed (SIGTERM/SIGINT stop the emulator)
#
# The cache dir is $KINESIS_LOCAL_DIR, default $HOME/.cache/pulse/kinesis-local.
set -euo pipefail

VERSION=0.6.2
DIR=${KINESIS_LOCAL_DIR:-$HOME/.cache/pulse/kinesis-local}
MAIN=$DIR/node_modules/kinesis-local/main.js

install() {
	if [[ -f $MAIN ]]; then
		return
	fi
	command -v npm >/dev/null || { echo "kinesis-local.sh: npm not found; install Node.js (npm) first" >&2; exit 1; }
	mkdir -p "$DIR"
	npm install --silent --no-audit --no-fund --prefix "$DIR" "kinesis-local@$VERSION" >&2
}

start() {
	local port=${1:?usage: kinesis-local.sh start PORT}
	local tls=${2:-0}
	install
	command -v node >/dev/null || { echo "kinesis-local.sh: node not found" >&2; exit 1; }
	if [[ $tls == 0 ]]; then
		# The emulator insists on a TLS port too; any free one will do.
		tls=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
	fi
	KINESIS_MOCK_CERT_PATH=$DIR/node_modules/kinesis-local/server.json \
	KINESIS_MOCK_PLAIN_PORT=$port KINESIS_MOCK_TLS_PORT=$tls \
	CREATE_STREAM_DURATION=0ms REGISTER_STREAM_CONSUMER_DURATION=0ms \
	UPDATE_SHARD_COUNT_DURATION=0ms DELETE_STREAM_DURATION=0ms LOG_LEVEL=WARN \
		node "$MAIN" >&2 &
	local pid=$!
	trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' TERM INT
	for _ in $(seq 1 600); do
		if curl -fs "http://127.0.0.1:$port/healthcheck" >/dev/null 2>&1; then
			echo ready
			wait $pid
			exit $?
		fi
		if ! kill -0 $pid 2>/dev/null; then
			echo "kinesis-local.sh: emulator exited before it was ready" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "kinesis-local.sh: emulator not ready after 60s" >&2
	kill $pid
	exit 1
}

case ${1:-} in
install) install ;;
start) shift; start "$@" ;;
*) echo "usage: $0 install | start PORT" >&2; exit 2 ;;
esac
