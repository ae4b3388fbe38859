package geoip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The bundled table's addresses are long-held, well-known blocks whose
// country in the bundled file was read from it (2.3.2026061719) and matches
// their holder's registration: a refresh that moves one is worth a look.
func TestBundledCountry(t *testing.T) {
	db, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		addr string
		want string
	}{
		{"8.8.8.8", "US"},              // Google Public DNS
		{"1.1.1.1", "AU"},              // APNIC's block lent to Cloudflare: registered in AU
		{"80.156.0.1", "DE"},           // Deutsche Telekom
		{"217.0.0.1", "DE"},            // Deutsche Telekom
		{"193.0.6.139", "NL"},          // RIPE NCC, Amsterdam
		{"133.0.0.1", "JP"},            // JPNIC
		{"200.160.0.1", "BR"},          // NIC.br
		{"2003::1", "DE"},              // Deutsche Telekom IPv6
		{"2001:4860:4860::8888", "US"}, // Google Public DNS IPv6
		{"2001:67c:2e8::1", "NL"},      // RIPE NCC IPv6
		{"::ffff:8.8.8.8", "US"},       // IPv4-mapped: the IPv4 address
		{"10.0.0.1", ""},               // private
		{"172.16.5.4", ""},             // private
		{"192.168.1.1", ""},            // private
		{"127.0.0.1", ""},              // loopback
		{"169.254.1.1", ""},            // link-local
		{"224.0.0.1", ""},              // multicast
		{"0.0.0.0", ""},                // unspecified
		{"100.64.0.1", ""},             // carrier-grade NAT
		{"192.0.2.1", ""},              // documentation
		{"255.255.255.255", ""},        // broadcast
		{"::1", ""},                    // loopback
		{"fd00::1", ""},                // unique local
		{"fe80::1%eth0", ""},           // link-local, with a zone
		{"2001:db8::1", ""},            // documentation: the file says JP
		{"::ffff:192.168.1.1", ""},     // IPv4-mapped private
	} {
		if got := db.Country(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Country(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := db.Country(netip.Addr{}); got != "" {
		t.Errorf("Country(zero Addr) = %q, want \"\"", got)
	}
}

// TestBundledVersion: data/VERSION and the embedded file must come from the
// same update; ip-location-db's versions end in the build's yyyymmddhh.
func TestBundledVersion(t *testing.T) {
	db, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v := BundledVersion()
	if !strings.HasPrefix(v, "@ip-location-db/geo-whois-asn-country-mmdb@") {
		t.Fatalf("BundledVersion() = %q, want the npm package and version", v)
	}
	built := db.reader.Metadata.BuildTime().UTC().Format("2006010215")
	if !strings.HasSuffix(v, "."+built) {
		t.Errorf("BundledVersion() = %q, but the embedded file was built at %s (yyyymmddhh): run scripts/update-geoip.sh", v, built)
	}
	if age := time.Since(db.reader.Metadata.BuildTime()); age < 0 {
		t.Errorf("embedded file built in the future (%v)", age)
	}
}

// record is one network's data in a test file built with mmdbwriter.
type record struct {
	network string
	data    mmdbtype.Map
}

// writeDB writes a MaxMind DB file of the records to a temporary file.
func writeDB(t testing.TB, dbType string, ipVersion int, records []record) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IPVersion: ipVersion, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		_, network, err := net.ParseCIDR(r.network)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, r.data); err != nil {
			t.Fatalf("insert %s: %v", r.network, err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// geoName is a country or continent as GeoLite2 writes it.
func geoName(id uint32, code, en string) mmdbtype.Map {
	return mmdbtype.Map{
		"geoname_id": mmdbtype.Uint32(id),
		"iso_code":   mmdbtype.String(code),
		"names":      mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(en)},
	}
}

// geoLite2Country is a record in GeoLite2-Country's layout.
func geoLite2Country(code, en string) mmdbtype.Map {
	country := geoName(1, code, en)
	return mmdbtype.Map{
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": mmdbtype.Map{"en": mmdbtype.String("Europe")}},
		"country":            country,
		"registered_country": country,
	}
}

// geoLite2City is a record in GeoLite2-City's layout: the country among
// many other fields, some of them before it in the map's order.
func geoLite2City(code, en, city string) mmdbtype.Map {
	r := geoLite2Country(code, en)
	r["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2), "names": mmdbtype.Map{"en": mmdbtype.String(city)}}
	r["location"] = mmdbtype.Map{"accuracy_radius": mmdbtype.Uint16(100), "latitude": mmdbtype.Float64(51.5), "longitude": mmdbtype.Float64(-0.1), "time_zone": mmdbtype.String("Europe/London")}
	r["postal"] = mmdbtype.Map{"code": mmdbtype.String("EC1")}
	r["subdivisions"] = mmdbtype.Slice{geoName(3, "ENG", "England")}
	return r
}
