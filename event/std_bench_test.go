package event

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecodeStdlib is the reference: encoding/json into []Event, no
// validation. Compare its ns/event with BenchmarkDecode/50.
func BenchmarkDecodeStdlib(b *testing.B) {
	const n = 50
	body := benchBody(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var evs []Event
		if err := json.Unmarshal(body, &evs); err != nil || len(evs) != n {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
