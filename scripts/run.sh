#!/usr/bin/env bash
# Runs Pulse on the embedded defaults (local stream, in-process Redis, local
# archive under ./data): no AWS account, no servers to install.
# Extra arguments go to `pulse serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
web/build.sh
mkdir -p bin
go build -o bin/pulse ./cmd/pulse
exec bin/pulse serve "$@"
