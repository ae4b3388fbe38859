#!/usr/bin/env bash
# update-geoip.sh refreshes the country database that package geoip embeds
# (geoip/data/) from the npm package @ip-location-db/geo-whois-asn-country-mmdb
# at the version pinned below (or the one given as $1). It is not part of the
# build: the compressed file is committed, so a fresh clone builds offline.
# To update: pick a version (`npm view @ip-location-db/geo-whois-asn-country-mmdb
# versions`), run this script with it, change PINNED, run
# `go test ./geoip/` (the table of well-known addresses must still hold), and
# commit geoip/data/. Needs npm, tar and zstd.
set -euo pipefail
PINNED=2.3.2026061719
version=${1:-$PINNED}
pkg=@ip-location-db/geo-whois-asn-country-mmdb
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/geoip/data
for tool in npm tar zstd; do
	command -v "$tool" >/dev/null || { echo "update-geoip.sh: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
mmdb=$tmp/package/geo-whois-asn-country.mmdb
[ -s "$mmdb" ] || { echo "update-geoip.sh: $pkg@$version has no geo-whois-asn-country.mmdb" >&2; exit 1; }

# zstd -19 makes the file 40% of its size (7.8 MB to 3.1 MB on 2.3.2026061719);
# Bundled decodes it once in about 30 ms.
zstd -q -19 -f "$mmdb" -o "$out/geo-whois-asn-country.mmdb.zst"
cp "$tmp/package/NRO_LICENSE" "$out/NRO_LICENSE"
printf '%s@%s\n' "$pkg" "$version" >"$out/VERSION"
echo "update-geoip.sh: $pkg@$version: $(wc -c <"$mmdb") bytes, $(wc -c <"$out/geo-whois-asn-country.mmdb.zst") compressed" >&2
