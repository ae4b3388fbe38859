package stats

import (
	"strings"
	"testing"
	"time"
)

func TestSiteZones(t *testing.T) {
	z, err := ParseSiteZones("demo=Europe/Berlin, shop=America/St_Johns")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ body, zone string }{
		{`{"site_id":"demo","metrics":["visitors"],"date_range":"day"}`, "Europe/Berlin"},
		{`{"site_id":"shop","metrics":["visitors"],"date_range":"day"}`, "America/St_Johns"},
		{`{"site_id":"demo","metrics":["visitors"],"date_range":"day","timezone":"Asia/Tokyo"}`, "Asia/Tokyo"},
		{`{"site_id":"other","metrics":["visitors"],"date_range":"day"}`, "UTC"},
	}
	for _, tt := range tests {
		q, err := Parse(z.Body([]byte(tt.body)), now)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if q.Location.String() != tt.zone {
			t.Errorf("%s: answered in %s, want %s", tt.body, q.Location, tt.zone)
		}
		if tt.zone == "Europe/Berlin" && !q.Range.From.Equal(time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)) {
			t.Errorf("the day in Berlin begins %v", q.Range.From)
		}
	}
	if got := string(z.Body([]byte("not json"))); got != "not json" {
		t.Errorf("a body that is no object is changed: %q", got)
	}
	for _, bad := range []string{"demo", "=UTC", "demo=Local", "demo=Mars/Olympus", "demo=/etc/localtime"} {
		if _, err := ParseSiteZones(bad); err == nil || !strings.Contains(err.Error(), "time zone") {
			t.Errorf("%q: %v, want an error naming the time zone", bad, err)
		}
	}
}
