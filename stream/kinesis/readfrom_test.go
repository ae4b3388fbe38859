package kinesis

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pulsehq/pulse/stream"
)

// testReadFrom reads from a position inclusive, at each kind of position:
// the first, a middle and the last sub-record of an aggregated record, and
// a plain record. The aggregator's dedup rebuild starts there after a crash
// (no position "before" a sub-record 0 exists to read after).
func testReadFrom(t *testing.T, client *kinesis.Client) {
	name := createStream(t, client, 2)
	s := open(t, client, name, nil)
	events := putEvents(t, s, "f", 600)
	plain := open(t, client, name, func(c *Config) { c.NoAggregation = true })
	events = append(events, putEvents(t, plain, "q", 40)...)
	byShard := readAll(t, s)
	checkExactlyOnce(t, events, byShard)

	for shard, recs := range byShard {
		kinds := map[string]int{}
		for i, r := range recs {
			_, sub, _ := parsePosition(r.Seq)
			kind := ""
			switch {
			case strings.HasPrefix(r.Key, "demo/q-"):
				kind = "plain"
			case sub == 0:
				kind = "first sub-record"
			case sub == lastSub:
				kind = "last sub-record"
			default:
				kind = "middle sub-record"
			}
			if _, ok := kinds[kind]; !ok {
				kinds[kind] = i
			}
		}
		for _, kind := range []string{"first sub-record", "middle sub-record", "last sub-record", "plain"} {
			i, ok := kinds[kind]
			if !ok {
				t.Fatalf("shard %s has no %s to read from", shard, kind)
			}
			fresh := open(t, client, name, nil)
			b, err := fresh.ReadFrom(context.Background(), shard, recs[i].Seq, 50)
			if err != nil {
				t.Fatalf("shard %s from %s (%s): %v", shard, recs[i].Seq, kind, err)
			}
			got := b.Records
			if len(got) > 0 && !b.Ended {
				rest, _ := readShard(t, fresh, shard, got[len(got)-1].Seq, 500)
				got = append(got, rest...)
			}
			if want := recs[i:]; !sameRecords(got, want) {
				t.Fatalf("shard %s from %s (%s, record %d): read %d records, want %d", shard, recs[i].Seq, kind, i, len(got), len(want))
			}
		}
	}
}

var _ func(context.Context, string, string, int) (stream.Batch, error) = (*Stream)(nil).ReadFrom
