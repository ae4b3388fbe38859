package geoip

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestOpenUserFile: Open reads a user's file in each layout it accepts. The
// addresses are looked up in files made here, so their countries are the
// test's own, not the world's.
func TestOpenUserFile(t *testing.T) {
	type lookup struct{ addr, want string }
	for _, tc := range []struct {
		name      string
		dbType    string
		ipVersion int
		records   []record
		lookups   []lookup
	}{
		{"GeoLite2-Country", "GeoLite2-Country", 6, []record{
			{"81.2.69.0/24", geoLite2Country("GB", "United Kingdom")},
			{"2001:218::/32", geoLite2Country("JP", "Japan")},
			// Anycast and satellite networks have no country, only a
			// registered_country: unknown, not where the ISP is.
			{"89.160.20.0/24", mmdbtype.Map{"registered_country": geoName(4, "SE", "Sweden")}},
			{"67.43.156.0/24", geoLite2Country("bt", "lower case")},
			{"2.125.160.0/24", geoLite2Country("EU", "Europe")}, // a continent, as old registries gave
		}, []lookup{{"2.125.160.1", ""},
			{"81.2.69.142", "GB"}, {"::ffff:81.2.69.142", "GB"}, {"2001:218::1", "JP"},
			{"89.160.20.1", ""}, {"67.43.156.1", ""}, {"8.8.8.8", ""}, {"192.168.0.1", ""},
		}},
		{"GeoLite2-City", "GeoLite2-City", 6, []record{
			{"81.2.69.0/24", geoLite2City("GB", "United Kingdom", "London")},
			{"2a02:ff00::/32", geoLite2City("IT", "Italy", "Rome")},
		}, []lookup{{"81.2.69.160", "GB"}, {"2a02:ff00::1", "IT"}, {"81.2.70.1", ""}}},
		{"ip-location-db country", "country ipvAll", 6, []record{
			{"8.8.8.0/24", mmdbtype.Map{"country_code": mmdbtype.String("US")}},
			{"2003::/19", mmdbtype.Map{"country_code": mmdbtype.String("DE")}},
		}, []lookup{{"8.8.8.8", "US"}, {"2003::1", "DE"}, {"9.9.9.9", ""}}},
		{"IPv4-only GeoIP2-Country", "GeoIP2-Country", 4, []record{
			{"81.2.69.0/24", geoLite2Country("GB", "United Kingdom")},
		}, []lookup{{"81.2.69.1", "GB"}, {"::ffff:81.2.69.1", "GB"}, {"2001:218::1", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(writeDB(t, tc.dbType, tc.ipVersion, tc.records))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, l := range tc.lookups {
				if got := db.Country(netip.MustParseAddr(l.addr)); got != l.want {
					t.Errorf("Country(%s) = %q, want %q", l.addr, got, l.want)
				}
			}
		})
	}
}

// TestOpenRefuses: a file Pulse cannot answer countries from fails at Open,
// naming the file, instead of answering "" for every visitor.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	notMMDB := filepath.Join(dir, "GeoIP.dat")
	if err := os.WriteFile(notMMDB, []byte("legacy GeoIP country database, not MaxMind DB"), 0o644); err != nil {
		t.Fatal(err)
	}
	asn := writeDB(t, "GeoLite2-ASN", 6, []record{{"1.0.0.0/24", mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(13335),
		"autonomous_system_organization": mmdbtype.String("CLOUDFLARENET"),
	}}})
	empty := writeDB(t, "GeoLite2-Country", 6, nil)
	for _, path := range []string{filepath.Join(dir, "missing.mmdb"), notMMDB, asn, empty} {
		db, err := Open(path)
		if err == nil {
			db.Close()
			t.Errorf("Open(%s) succeeded, want an error", path)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%s) error %q does not name the file", path, err)
		}
	}
}

// TestCountryConcurrent is for -race: one DB serves every request.
func TestCountryConcurrent(t *testing.T) {
	db, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addrs := []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2003::1"), netip.MustParseAddr("10.1.1.1")}
	want := []string{"US", "DE", ""}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if got := db.Country(addrs[i%3]); got != want[i%3] {
					t.Errorf("Country(%s) = %q, want %q", addrs[i%3], got, want[i%3])
					return
				}
			}
		})
	}
	wg.Wait()
}
