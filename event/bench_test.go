package event

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchBody is n realistic tracker events: a JSON array, or one object
// when n is 1.
func benchBody(n int) []byte {
	var parts []string
	for i := range n {
		parts = append(parts, `{"id":"01JDX6T8Q5ZK3V7M`+strconv.Itoa(100000+i)+`","site":"demo","type":"pageview","ts":1764258000123,`+
			`"url":"https://example.com/pricing?utm_source=news","ref":"https://news.example/item?id=42","uid":"a-91f2c7e0",`+
			`"props":{"plan":"pro","price":49,"target":"#buy-button","beta":true}}`)
	}
	if n == 1 {
		return []byte(parts[0])
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			body := benchBody(n)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				evs, _, rejects, err := Decode(body, Limits{})
				if err != nil || len(evs) != n || len(rejects) != 0 {
					b.Fatal(err, rejects)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// BenchmarkIngestPath is what ingest does per event after the body is read:
// decode, enrich, encode the stream record.
func BenchmarkIngestPath(b *testing.B) {
	const n = 50
	body := benchBody(n)
	now := time.UnixMilli(1764258000999)
	const ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	b.ReportAllocs()
	for b.Loop() {
		evs, _, _, err := Decode(body, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		EnrichAll(evs, now, ua)
		for i := range evs {
			if _, err := Marshal(&evs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

func BenchmarkUnmarshal(b *testing.B) {
	evs, _, _, _ := Decode(benchBody(1), Limits{})
	Enrich(&evs[0], time.UnixMilli(1764258000999), "Mozilla/5.0 (X11; Linux x86_64)")
	rec, _ := Marshal(&evs[0])
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(rec); err != nil {
			b.Fatal(err)
		}
	}
}
