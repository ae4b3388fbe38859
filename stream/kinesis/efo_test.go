package kinesis

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/pulsehq/pulse/internal/kinesistest"
	"github.com/pulsehq/pulse/stream"
)

// noInitialEvent is the SDK's protocol minus the initial-response event
// of SubscribeToShard, which kinesis-local never sends (the SDK would wait
// for it forever). Test-only: Kinesis sends it.
type noInitialEvent struct{ smithyhttp.ClientProtocol }

func (noInitialEvent) HasInitialEventMessage() bool { return false }

// openEFO opens a Stream reading with enhanced fan-out as consumer. Records
// reach subscriptions 0.5 to 1.5s after they are put on the emulator, so a
// Read waits longer than with polling before it calls a shard idle.
func openEFO(t *testing.T, client *kinesis.Client, name, consumer string) *Stream {
	t.Helper()
	return open(t, client, name, func(c *Config) {
		c.EFOConsumer = consumer
		c.EFOClientOptions = []func(*kinesis.Options){func(o *kinesis.Options) {
			o.Protocol = noInitialEvent{o.Protocol}
		}}
		c.ReadWait = 2500 * time.Millisecond
	})
}

// testEFO reads with enhanced fan-out what a polling reader reads: every
// event once, in order, at the same positions; after a position inside and
// at the end of an aggregated record; from a position inclusive.
func testEFO(t *testing.T, endpoint string) {
	client := newClient(t, endpoint)
	name := kinesistest.CreateStream(t, client, 2)
	p := open(t, client, name, nil)
	events := putEvents(t, p, "a", 500)
	plain := open(t, client, name, func(c *Config) { c.NoAggregation = true })
	events = append(events, putEvents(t, plain, "b", 40)...)
	events = append(events, putEvents(t, p, "c", 200)...)
	polled := readAll(t, p)
	checkExactlyOnce(t, events, polled)

	e := openEFO(t, client, name, "pulse-efo")
	if e.consumerARN == "" {
		t.Fatal("no consumer registered")
	}
	byShard := readAll(t, e)
	checkExactlyOnce(t, events, byShard)
	for shard, recs := range polled {
		if !sameRecords(byShard[shard], recs) {
			t.Fatalf("shard %s: enhanced fan-out read %d records, polling %d, or they differ", shard, len(byShard[shard]), len(recs))
		}
	}

	// Records put while a subscription is open arrive on it.
	var shard string
	for id := range polled {
		shard = id
		break
	}
	recs := polled[shard]
	more := putEvents(t, p, "d", 100)
	var want []stream.Record
	for _, ev := range more {
		if ev.res.Shard == shard {
			want = append(want, stream.Record{Seq: ev.res.Seq, Key: ev.key, Data: ev.data})
		}
	}
	got, _ := readShard(t, e, shard, recs[len(recs)-1].Seq, 1000)
	if len(got) != len(want) {
		t.Fatalf("shard %s: %d records put during the subscription, %d read", shard, len(want), len(got))
	}
	polledMore, _ := readShard(t, p, shard, recs[len(recs)-1].Seq, 1000)
	if !sameRecords(got, polledMore) {
		t.Fatalf("shard %s: records put during the subscription differ from polling", shard)
	}
	recs = append(recs, polledMore...)

	// Reads elsewhere while the subscription is followed are served by
	// polling and leave the subscription alone: after a user record inside
	// an aggregated record, and from it inclusive.
	inside, last := resumePoints(t, shard, recs)
	sub := e.cursor(shard).sub
	got = readN(t, e, shard, recs[inside].Seq, false, len(recs)-inside-1)
	if want := recs[inside+1:]; !sameRecords(got, want) {
		t.Fatalf("shard %s after %s: read %d records, want %d", shard, recs[inside].Seq, len(got), len(want))
	}
	got = readN(t, e, shard, recs[last].Seq, true, len(recs)-last)
	if want := recs[last:]; !sameRecords(got, want) {
		t.Fatalf("shard %s from %s: read %d records, want %d", shard, recs[last].Seq, len(got), len(want))
	}
	if e.cursor(shard).sub != sub || sub == nil {
		t.Fatalf("shard %s: reads elsewhere restarted the subscription", shard)
	}
	if n := metricValue(e.m.subscribed); n != 2 {
		t.Errorf("pulse_kinesis_subscriptions_active = %v while both shards are followed, want 2", n)
	}
	if n := metricValue(e.m.subscriptions.WithLabelValues(subOK)); n < 2 {
		t.Errorf("pulse_kinesis_subscriptions_total{result=ok} = %v, want at least 2", n)
	}

	// A second Stream under the same consumer name reuses the consumer; its
	// fresh cursors subscribe at the positions asked: from a record
	// inclusive on one shard, inside an aggregated record on the other.
	// Kinesis refuses a new subscription of the consumer to a shard for
	// about 5s after the last one started, so the first Reads may be
	// empty: readN waits.
	e.Close()
	for id, c := range e.cursors {
		select {
		case <-c.sub.done:
		default:
			t.Fatalf("shard %s: subscription still running after Close", id)
		}
	}
	if n := metricValue(e.m.subscribed); n != 0 {
		t.Errorf("pulse_kinesis_subscriptions_active = %v after Close, want 0", n)
	}
	if _, err := e.Read(context.Background(), shard, recs[len(recs)-1].Seq, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	again := openEFO(t, client, name, "pulse-efo")
	if again.consumerARN != e.consumerARN {
		t.Fatalf("consumer %s registered again as %s", e.consumerARN, again.consumerARN)
	}
	got = readN(t, again, shard, recs[inside].Seq, true, len(recs)-inside)
	if want := recs[inside:]; !sameRecords(got, want) {
		t.Fatalf("reused consumer, shard %s from %s: read %d records, want %d", shard, recs[inside].Seq, len(got), len(want))
	}
	if b, err := again.Read(context.Background(), shard, got[len(got)-1].Seq, 100); err != nil || len(b.Records) != 0 || b.Ended {
		t.Fatalf("read past the end of open shard %s: %d records, ended %v, %v", shard, len(b.Records), b.Ended, err)
	}
	for other, orecs := range polled {
		if other == shard {
			continue
		}
		in, _ := resumePoints(t, other, orecs)
		want, _ := readShard(t, p, other, orecs[in].Seq, 1000) // with the events put since
		got = readN(t, again, other, orecs[in].Seq, false, len(want))
		if !sameRecords(got, want) {
			t.Fatalf("reused consumer, shard %s after %s: read %d records, want %d", other, orecs[in].Seq, len(got), len(want))
		}
	}
	for id, c := range again.cursors {
		if c.sub == nil {
			t.Fatalf("shard %s read without a subscription", id)
		}
	}
}

// resumePoints finds in recs a user record inside an aggregated record and
// the last user record of one.
func resumePoints(t *testing.T, shard string, recs []stream.Record) (inside, last int) {
	t.Helper()
	inside, last = -1, -1
	for i, r := range recs[:len(recs)-1] {
		_, sub, _ := parsePosition(r.Seq)
		if sub > 0 && sub != lastSub && inside < 0 {
			inside = i
		}
		if sub == lastSub && i > 0 && recs[i-1].Seq[:len(r.Seq)-subDigits] == r.Seq[:len(r.Seq)-subDigits] && last < 0 {
			last = i
		}
	}
	if inside < 0 || last < 0 {
		t.Fatalf("shard %s: no aggregated record to resume inside (%d, %d)", shard, inside, last)
	}
	return inside, last
}

// readN reads shard after pos (from pos when from is set) until it has n
// records or 20s passed, in Reads of at most 150 records.
func readN(t *testing.T, s *Stream, shard, pos string, from bool, n int) []stream.Record {
	t.Helper()
	var all []stream.Record
	deadline := time.Now().Add(20 * time.Second)
	for len(all) < n && time.Now().Before(deadline) {
		var b stream.Batch
		var err error
		if from && len(all) == 0 {
			b, err = s.ReadFrom(context.Background(), shard, pos, 150)
		} else {
			b, err = s.Read(context.Background(), shard, pos, 150)
		}
		if err != nil {
			t.Fatalf("read %s at %q: %v", shard, pos, err)
		}
		if len(b.Records) > 150 {
			t.Fatalf("read %s: %d records for limit 150", shard, len(b.Records))
		}
		all = append(all, b.Records...)
		if len(b.Records) > 0 {
			pos = b.Records[len(b.Records)-1].Seq
		}
	}
	return all
}

// testEFOTotalTimeout: a subscription outlives the total request timeout
// of the client's HTTP client (the server gives its Kinesis client one):
// records put after that timeout arrive on the same subscription, with no
// failure and no resubscription.
func testEFOTotalTimeout(t *testing.T, client *kinesis.Client) {
	const total = 1500 * time.Millisecond
	timed := kinesis.New(client.Options(), func(o *kinesis.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(total)
	})
	name := kinesistest.CreateStream(t, client, 1)
	p := open(t, client, name, nil)
	first := putEvents(t, p, "early", 50)
	e := openEFO(t, timed, name, "pulse-efo-timeout")
	shard := first[0].res.Shard
	got := readN(t, e, shard, "", false, len(first))
	time.Sleep(2 * total)
	more := putEvents(t, p, "late", 50)
	got = append(got, readN(t, e, shard, got[len(got)-1].Seq, false, len(more))...)
	checkExactlyOnce(t, append(first, more...), map[string][]stream.Record{shard: got})
	if n := metricValue(e.m.subscriptions.WithLabelValues(subFailed)); n != 0 {
		t.Errorf("%v subscriptions failed; the total timeout of %v cut them", n, total)
	}
	if n := metricValue(e.m.subscriptions.WithLabelValues(subOK)); n != 1 {
		t.Errorf("%v subscriptions made, want 1", n)
	}
}

// testEFOReshard reads a resharded stream with enhanced fan-out in lineage
// order: a closed parent's subscription ends with Ended, after all its
// records; the children follow.
func testEFOReshard(t *testing.T, endpoint string) {
	client := newClient(t, endpoint)
	name := kinesistest.CreateStream(t, client, 2)
	p := open(t, client, name, nil)
	events := putEvents(t, p, "before", 300)
	if _, err := client.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{
		StreamName: aws.String(name), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling,
	}); err != nil {
		t.Fatalf("update shard count: %v", err)
	}
	kinesistest.WaitActive(t, client, name)
	events = append(events, putEvents(t, p, "after", 300)...)

	e := openEFO(t, client, name, "pulse-efo-reshard")
	shards, err := e.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(map[string]bool)
	byShard := make(map[string][]stream.Record)
	closed := 0
	for len(done) < len(shards) {
		progress := false
		for _, sh := range shards {
			if done[sh.ID] || slices.ContainsFunc(sh.Parents, func(p string) bool { return !done[p] }) {
				continue
			}
			recs, ended := readShard(t, e, sh.ID, "", 300)
			byShard[sh.ID] = recs
			if ended != sh.Closed {
				t.Fatalf("shard %s: closed %v, read to Ended %v", sh.ID, sh.Closed, ended)
			}
			if sh.Closed {
				closed++
			}
			done[sh.ID] = true
			progress = true
		}
		if !progress {
			t.Fatalf("shard lineage has a cycle or a missing parent: %+v", shards)
		}
	}
	if closed != 2 || len(shards) != 6 {
		t.Fatalf("after 2->4: %d shards, %d closed, want 6 and 2", len(shards), closed)
	}
	checkExactlyOnce(t, events, byShard)
}

// TestShardEnd: the event that ends a closed shard names its children and
// has no continuation; every other event continues.
func TestShardEnd(t *testing.T) {
	seq := aws.String("49590338271490256608559692538361571095921575989136588898")
	tests := []struct {
		name string
		ev   types.SubscribeToShardEvent
		want bool
	}{
		{"records", types.SubscribeToShardEvent{ContinuationSequenceNumber: seq, Records: []types.Record{{SequenceNumber: seq}}}, false},
		{"heartbeat", types.SubscribeToShardEvent{ContinuationSequenceNumber: seq}, false},
		{"end", types.SubscribeToShardEvent{ChildShards: []types.ChildShard{{ShardId: aws.String("shardId-000000000002")}}}, true},
		{"no continuation", types.SubscribeToShardEvent{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shardEnd(tt.ev); got != tt.want {
				t.Fatalf("shardEnd = %v, want %v", got, tt.want)
			}
		})
	}
}

// metricValue reads a gauge or counter.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
