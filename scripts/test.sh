#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine with Go: installs
# what the tests need (redis-server, Chromium, Node.js and npm, the Kinesis
# emulator), builds the dashboard bundle, checks formatting and vet, runs
# every test with the race detector (tests start their own redis-server,
# emulators and browsers on free ports), then runs each fuzz target for a
# bounded number of inputs (FUZZTIME, default 5000x).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test
web/build.sh
(cd web && npm test --silent)
if [ -x scripts/kinesis-local.sh ]; then scripts/kinesis-local.sh install; fi
# DuckDB, the independent reader the archive test checks the Parquet files with.
duck=${PULSE_CACHE:-$HOME/.cache/pulse}/duckdb
if [ ! -d "$duck/node_modules/@duckdb/node-api" ]; then
	npm install --silent --no-audit --no-fund --prefix "$duck" @duckdb/node-api@1.5.6-r.1 >/dev/null
fi
export PULSE_DUCKDB_NODE_MODULES="$duck/node_modules"
# Redocly CLI, the linter systemtest's TestOpenAPILint runs on docs/openapi.yaml.
redocly=${PULSE_CACHE:-$HOME/.cache/pulse}/redocly
if ! grep -qs '"version": "2.77.0"' "$redocly/node_modules/@redocly/cli/package.json"; then
	npm install --silent --no-audit --no-fund --prefix "$redocly" @redocly/cli@2.77.0 >/dev/null
fi
export PULSE_REDOCLY="$redocly/node_modules/.bin/redocly"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

export PULSE_ARTIFACTS=${PULSE_ARTIFACTS:-$PWD/artifacts}
mkdir -p "$PULSE_ARTIFACTS"
go test -race -count=1 -timeout 30m ./...

# A count, not a duration: Go 1.26's fuzz coordinator can report a bare
# "context deadline exceeded" when a duration runs out on a busy machine
# (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline to race.
fuzztime=${FUZZTIME:-5000x}
# Minimizing a new interesting input runs up to 60 s by default, each; a
# decoder as rich as Parquet's finds a dozen on a warm cache and took
# over 6 minutes for 5,000 inputs. A count bounds it the same way.
minimizetime=${FUZZMINIMIZETIME:-200x}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg=./$(dirname "${f#./}")
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "fuzz $pkg $name ($fuzztime)"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" -timeout 10m "$pkg"
	done
done
echo "all tests passed"
