package uaparse

import (
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
)

// BenchmarkParse parses the fixture's User-Agents in turn with each
// parser; ns/op is per User-Agent. medama alone is the trie lookup with no
// renaming; uaparse is what ingest would pay per request.
func BenchmarkParse(b *testing.B) {
	p := New()
	rows := loadFixture(b)
	uas := make([]string, len(rows))
	for i, r := range rows {
		uas[i] = r.UA
	}
	b.Run("event.classify", func(b *testing.B) {
		b.ReportAllocs()
		var e event.Event
		for i := 0; b.Loop(); i++ {
			event.Enrich(&e, time.Time{}, uas[i%len(uas)])
		}
	})
	b.Run("medama", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = p.ua.Parse(uas[i%len(uas)])
		}
	})
	b.Run("uaparse", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = p.Parse(uas[i%len(uas)])
		}
	})
	b.Run("uaparse.Software", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = p.Software(uas[i%len(uas)])
		}
	})
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = New()
	}
}
