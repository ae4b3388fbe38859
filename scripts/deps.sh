#!/usr/bin/env bash
# Installs what Pulse's build and tests need on a Debian/Ubuntu machine with Go:
# redis-server, Chromium (headless browser tests), Node.js and npm (the
# dashboard bundle and the Kinesis emulator). Each is installed only when
# missing, so a prepared machine pays nothing. Usage: scripts/deps.sh [run|test]
set -euo pipefail
what=${1:-test}

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=()
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
if [ "$what" = test ]; then
	command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
	command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
	command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
	echo "deps: installing ${pkgs[*]}" >&2
	sudo_ apt-get update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
