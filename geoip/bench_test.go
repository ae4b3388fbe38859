package geoip

import (
	"net/netip"
	"os"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// BenchmarkCountry is the per-request cost at ingest: a mix of IPv4, IPv6
// and private addresses looked up in the bundled database.
func BenchmarkCountry(b *testing.B) {
	db, err := Bundled()
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	addrs := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("80.156.0.1"),
		netip.MustParseAddr("133.0.0.1"), netip.MustParseAddr("2003::1"),
		netip.MustParseAddr("2001:4860:4860::8888"), netip.MustParseAddr("::ffff:193.0.6.139"),
		netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("200.160.0.1"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		db.Country(addrs[i%len(addrs)])
	}
}

// BenchmarkCountryCityLayout is the same lookup in a GeoLite2-City-shaped
// record, where the country sits among other fields.
func BenchmarkCountryCityLayout(b *testing.B) {
	db, err := Open(writeDB(b, "GeoLite2-City", 6, []record{
		{"81.2.69.0/24", geoLite2City("GB", "United Kingdom", "London")},
	}))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	addr := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	for b.Loop() {
		db.Country(addr)
	}
}

// BenchmarkBundled is the start-up cost: decompressing the embedded file
// and opening it.
func BenchmarkBundled(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		db, err := Bundled()
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// FuzzOpen: any file given as --geoip, however broken, makes Open fail or
// gives a DB whose lookups answer; it never panics.
func FuzzOpen(f *testing.F) {
	valid, err := os.ReadFile(writeDB(f, "GeoLite2-Country", 6, []record{
		{"81.2.69.0/24", geoLite2Country("GB", "United Kingdom")},
		{"2001:218::/32", mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.Uint32(7)}}},
	}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[len(valid)/3:])
	f.Add([]byte{})
	addrs := []netip.Addr{netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("2001:218::1"), netip.MustParseAddr("8.8.8.8")}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := t.TempDir() + "/fuzz.mmdb"
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path)
		if err != nil {
			return
		}
		defer db.Close()
		for _, a := range addrs {
			if c := db.Country(a); c != "" && canonical(c) != c {
				t.Errorf("Country(%s) = %q, not a country code", a, c)
			}
		}
	})
}
