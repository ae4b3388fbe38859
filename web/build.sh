#!/usr/bin/env bash
# Builds the dashboard bundle into web/dist/ (dashboard.js, dashboard.css):
# npm ci from the committed package-lock.json, then esbuild. The Go package
# embeds dist/, so rebuild the binary after this. Needs node and npm
# (scripts/deps.sh installs them). Prints the bundle's gzipped size.
set -euo pipefail
cd "$(dirname "$0")"

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
for f in dist/dashboard.js dist/dashboard.css; do
	echo "web: $f $(wc -c <"$f") bytes, $(gzip -9 -c "$f" | wc -c) gzipped"
done
