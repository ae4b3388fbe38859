// Package geoip tells the country (ISO 3166-1 alpha-2) of a client address
// from a MaxMind DB file: the one bundled in the binary, or a user's own
// GeoLite2/GeoIP2 Country or City file.
//
// The bundled database is geo-whois-asn-country from the npm package
// @ip-location-db/geo-whois-asn-country-mmdb (version in data/VERSION):
// published under CC0-1.0, built from geofeeds, the five RIRs' WHOIS data and
// their ASN-country data, the last two CC BY 4.0 by the NRO (data/NRO_LICENSE,
// attribution in docs/geoip.md). It is chosen over Debian's geoip-database,
// which is in the legacy GeoIP format (not MaxMind DB, so maxminddb cannot read
// it) and holds MaxMind data frozen in December 2019. It is committed
// compressed with zstd (3.1 MB, 7.8 MB decoded) and refreshed by
// scripts/update-geoip.sh; docs/geoip.md says how accurate it is.
//
// The package never keeps an address: Country looks it up and forgets it.
package geoip

import (
	_ "embed"
	"fmt"
	"net/netip"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/oschwald/maxminddb-golang/v2"
)

//go:embed data/geo-whois-asn-country.mmdb.zst
var bundledZst []byte

//go:embed data/VERSION
var bundledVersion string

// BundledVersion names the npm package and version the bundled database
// comes from, for a start-up log line and the attribution.
func BundledVersion() string {
	return strings.TrimSpace(bundledVersion)
}

// maxBundledSize bounds what decoding the embedded file may allocate, so a
// wrong file in data/ fails at start instead of taking the memory.
const maxBundledSize = 64 << 20

// DB looks up countries in one MaxMind DB file. Country is safe for
// concurrent use; Close must come after the last Country.
type DB struct {
	reader *maxminddb.Reader
	// path is where the country code sits in a record: GeoLite2/GeoIP2
	// files keep it at country.iso_code, ip-location-db's at country_code.
	path []any
}

var (
	maxMindPath      = []any{"country", "iso_code"}
	ipLocationDBPath = []any{"country_code"}
)

// Open opens a MaxMind DB file, such as GeoLite2-Country.mmdb,
// GeoLite2-City.mmdb, GeoIP2-Country.mmdb or an ip-location-db country file.
// The file is mapped into memory, not read: it must stay in place until Close.
func Open(path string) (*DB, error) {
	reader, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open geoip database %s: %w", path, err)
	}
	db, err := newDB(reader)
	if err != nil {
		reader.Close()
		return nil, fmt.Errorf("open geoip database %s: %w", path, err)
	}
	return db, nil
}

// Bundled opens the database embedded in the binary. Each call decodes it
// anew (about 8 MB on the heap, freed by the garbage collector after Close):
// open it once per process.
func Bundled() (*DB, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBundledSize))
	if err != nil {
		return nil, fmt.Errorf("open bundled geoip database: %w", err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(bundledZst, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress bundled geoip database: %w", err)
	}
	reader, err := maxminddb.OpenBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("open bundled geoip database: %w", err)
	}
	db, err := newDB(reader)
	if err != nil {
		reader.Close()
		return nil, fmt.Errorf("open bundled geoip database: %w", err)
	}
	return db, nil
}

// probes are public addresses of long-held blocks in every region (Google,
// Cloudflare, Deutsche Telekom, RIPE NCC, JPNIC, NIC.br, AFRINIC) that any
// country or city database places somewhere.
var probes = []netip.Addr{
	netip.MustParseAddr("8.8.8.8"),
	netip.MustParseAddr("1.1.1.1"),
	netip.MustParseAddr("80.156.0.1"),
	netip.MustParseAddr("81.2.69.142"),
	netip.MustParseAddr("193.0.6.139"),
	netip.MustParseAddr("133.0.0.1"),
	netip.MustParseAddr("200.160.0.1"),
	netip.MustParseAddr("196.216.2.1"),
	netip.MustParseAddr("2001:4860:4860::8888"),
	netip.MustParseAddr("2003::1"),
	netip.MustParseAddr("2001:67c:2e8::1"),
}

// newDB picks the record layout by looking up the probes: GeoLite2/GeoIP2
// (and DB-IP) files keep the country at country.iso_code, ip-location-db's
// at country_code. The metadata's database_type does not tell reliably
// ("GeoLite2-City", "country ipvAll", whatever a file's maker chose). A walk
// of the file's networks would, but its cost on a corrupt tree (nodes that
// share children) has no bound, while a lookup is at most 128 steps. A file in
// which no probe has a country, such as an ASN database given by mistake, is
// refused rather than answering "" for every visitor.
func newDB(reader *maxminddb.Reader) (*DB, error) {
	if v := reader.Metadata.IPVersion; v != 4 && v != 6 {
		return nil, fmt.Errorf("ip_version %d is neither 4 nor 6", v)
	}
	for _, addr := range probes {
		if addr.Is6() && reader.Metadata.IPVersion == 4 {
			continue
		}
		var record struct {
			Country struct {
				ISOCode string `maxminddb:"iso_code"`
			} `maxminddb:"country"`
			CountryCode string `maxminddb:"country_code"`
		}
		// A record of another shape is no evidence either way.
		if err := reader.Lookup(addr).Decode(&record); err != nil {
			continue
		}
		switch {
		case record.Country.ISOCode != "":
			return &DB{reader: reader, path: maxMindPath}, nil
		case record.CountryCode != "":
			return &DB{reader: reader, path: ipLocationDBPath}, nil
		}
	}
	return nil, fmt.Errorf("no country (country.iso_code or country_code) for any of %d well-known addresses: not a country or city database", len(probes))
}

// Country returns the ISO 3166-1 alpha-2 code of the country addr is in, or ""
// when it is unknown: not in the file, private, loopback, link-local,
// multicast, or otherwise not a global unicast address. IPv4-mapped IPv6
// addresses are looked up as the IPv4 address they carry; a zone is ignored.
func (db *DB) Country(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if !addr.IsGlobalUnicast() || addr.IsPrivate() || reserved(addr) {
		return ""
	}
	if addr.Is6() && db.reader.Metadata.IPVersion == 4 {
		return ""
	}
	var code string
	// An error means a record without the code or of another shape: unknown.
	if err := db.reader.Lookup(addr).DecodePath(&code, db.path...); err != nil {
		return ""
	}
	return canonical(code)
}

// notRouted are the special-purpose blocks (IANA's IPv4 and IPv6
// special-purpose registries) that netip's IsGlobalUnicast and IsPrivate let
// through but no client on the internet has: databases still give some a
// country (the bundled one says JP for 2001:db8::/32), which would be a lie.
var notRouted = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation
}

// reserved reports whether addr is in a block of notRouted. The list is
// short, and a linear scan over it costs less than the lookup that follows.
func reserved(addr netip.Addr) bool {
	for _, p := range notRouted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// canonical returns code if it is two ASCII capital letters, else "": a
// file's odd value (a lower-case code, "EU", a name) never reaches a
// dimension as a country. "EU" and "AP" are continents some registries give
// for space not assigned to one country.
func canonical(code string) string {
	if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
		return ""
	}
	if code == "EU" || code == "AP" {
		return ""
	}
	return code
}

// Close releases the file. No Country call may run during or after it.
func (db *DB) Close() error {
	if err := db.reader.Close(); err != nil {
		return fmt.Errorf("close geoip database: %w", err)
	}
	return nil
}
