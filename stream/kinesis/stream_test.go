package kinesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	dto "github.com/prometheus/client_model/go"
	"github.com/pulsehq/pulse/internal/kinesistest"
	"github.com/pulsehq/pulse/stream"
)

// The stream.Record positions this package hands out are compared with
// stream.CompareSeq by its users; the shapes below are what they rely on.
var (
	_ func(context.Context, []stream.Entry) ([]PutResult, error)       = (*Stream)(nil).Put
	_ func(context.Context, string, string, int) (stream.Batch, error) = (*Stream)(nil).Read
	_ func(context.Context) ([]stream.Shard, error)                    = (*Stream)(nil).Shards
)

// TestEmulator runs the integration scenarios against one kinesis-local,
// each on a fresh stream.
func TestEmulator(t *testing.T) {
	endpoint := kinesistest.Start(t)
	client := newClient(t, endpoint)
	t.Run("aggregated", func(t *testing.T) { testPutRead(t, client, 2000, false) })
	t.Run("plain", func(t *testing.T) { testPutRead(t, client, 1000, true) })
	t.Run("resume", func(t *testing.T) { testResume(t, client) })
	t.Run("read from", func(t *testing.T) { testReadFrom(t, client) })
	t.Run("reshard", func(t *testing.T) { testReshard(t, client) })
	t.Run("too large", func(t *testing.T) { testTooLarge(t, client) })
	t.Run("throttled", func(t *testing.T) { testThrottled(t, endpoint) })
	t.Run("backpressure", func(t *testing.T) { testBackpressure(t, client) })
	t.Run("expired iterator", func(t *testing.T) { testExpired(t, endpoint) })
	t.Run("enhanced fan-out", func(t *testing.T) { testEFO(t, endpoint) })
	t.Run("enhanced fan-out reshard", func(t *testing.T) { testEFOReshard(t, endpoint) })
	t.Run("enhanced fan-out past the total timeout", func(t *testing.T) { testEFOTotalTimeout(t, client) })
}

// open makes a Stream on name and runs it until the test ends.
func open(t *testing.T, client *kinesis.Client, name string, mod func(*Config)) *Stream {
	t.Helper()
	cfg := Config{Stream: name, Client: client, PollEvery: 5 * time.Millisecond, MaxPollEvery: 50 * time.Millisecond, ReadWait: 300 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		s.Close()
	})
	return s
}

type sent struct {
	key  string
	data []byte
	res  PutResult
}

// putEvents puts n events from 8 concurrent callers in Puts of 1 to 16
// entries, as ingest does, and returns them with their results.
func putEvents(t *testing.T, s *Stream, prefix string, n int) []sent {
	t.Helper()
	out := make([]sent, n)
	for i := range out {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		out[i].key = "demo/" + id
		out[i].data = fmt.Appendf(nil, `{"id":%q,"site":"demo","type":"pageview","url":"https://example.com/%s"}`, id, strings.Repeat("p", i%200))
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				size := int64(1 + next.Load()%16)
				end := next.Add(size)
				start := end - size
				if start >= int64(n) {
					return
				}
				end = min(end, int64(n))
				batch := out[start:end]
				entries := make([]stream.Entry, len(batch))
				for i, e := range batch {
					entries[i] = stream.Entry{Key: e.key, Data: e.data}
				}
				res, err := s.Put(context.Background(), entries)
				if err != nil {
					errs <- err
					return
				}
				for i := range batch {
					batch[i].res = res[i]
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("put: %v", err)
	}
	return out
}

// readShard reads shard after pos until it ends or has nothing new.
func readShard(t *testing.T, s *Stream, shard, after string, limit int) ([]stream.Record, bool) {
	t.Helper()
	var all []stream.Record
	for {
		b, err := s.Read(context.Background(), shard, after, limit)
		if err != nil {
			t.Fatalf("read %s after %q: %v", shard, after, err)
		}
		if len(b.Records) > limit {
			t.Fatalf("read %s: %d records for limit %d", shard, len(b.Records), limit)
		}
		all = append(all, b.Records...)
		if len(b.Records) > 0 {
			after = b.Records[len(b.Records)-1].Seq
		}
		if b.Ended {
			return all, true
		}
		if len(b.Records) == 0 {
			return all, false
		}
	}
}

// checkExactlyOnce checks that the records read per shard are in strictly
// ascending position order and hold every sent event once, where Put said.
func checkExactlyOnce(t *testing.T, events []sent, byShard map[string][]stream.Record) {
	t.Helper()
	want := make(map[string]sent, len(events))
	for _, e := range events {
		want[e.key] = e
	}
	seen := make(map[string]bool)
	for shard, recs := range byShard {
		for i, r := range recs {
			if i > 0 && stream.CompareSeq(recs[i-1].Seq, r.Seq) >= 0 {
				t.Fatalf("shard %s: record %d position %s not after %s", shard, i, r.Seq, recs[i-1].Seq)
			}
			e, ok := want[r.Key]
			if !ok {
				continue // from another round of the same test
			}
			if seen[r.Key] {
				t.Fatalf("event %s read twice", r.Key)
			}
			seen[r.Key] = true
			if !bytes.Equal(r.Data, e.data) {
				t.Fatalf("event %s: data %q, put %q", r.Key, r.Data, e.data)
			}
			if e.res.Shard != shard || e.res.Seq != r.Seq {
				t.Fatalf("event %s read at %s/%s, Put said %s/%s", r.Key, shard, r.Seq, e.res.Shard, e.res.Seq)
			}
		}
	}
	if len(seen) != len(events) {
		t.Fatalf("read %d of %d events", len(seen), len(events))
	}
}

func readAll(t *testing.T, s *Stream) map[string][]stream.Record {
	t.Helper()
	shards, err := s.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byShard := make(map[string][]stream.Record)
	for _, sh := range shards {
		byShard[sh.ID], _ = readShard(t, s, sh.ID, "", 700)
	}
	return byShard
}

func testPutRead(t *testing.T, client *kinesis.Client, n int, plain bool) {
	name := kinesistest.CreateStream(t, client, 4)
	s := open(t, client, name, func(c *Config) { c.NoAggregation = plain })
	events := putEvents(t, s, "e", n)
	byShard := readAll(t, s)
	checkExactlyOnce(t, events, byShard)

	kinesisRecords := make(map[string]bool)
	m := s.shards.Load()
	for shard, recs := range byShard {
		for _, r := range recs {
			seq, _, _ := parsePosition(r.Seq)
			kinesisRecords[seq] = true
			// Every event sits on the shard its own key hashes to, so a
			// retry of it, aggregated with other events or not, joins it.
			if got := m.lookup(hashOf(r.Key)); got != shard {
				t.Fatalf("event %s on shard %s, its key hashes to %s", r.Key, shard, got)
			}
		}
	}
	perRecord := float64(n) / float64(len(kinesisRecords))
	t.Logf("%d events in %d Kinesis records (%.1f per record)", n, len(kinesisRecords), perRecord)
	switch {
	case plain && len(kinesisRecords) != n:
		t.Fatalf("without aggregation: %d Kinesis records for %d events", len(kinesisRecords), n)
	case !plain && perRecord < 1.5:
		t.Fatalf("with aggregation: %.1f events per Kinesis record", perRecord)
	}
}

func testResume(t *testing.T, client *kinesis.Client) {
	name := kinesistest.CreateStream(t, client, 4)
	s := open(t, client, name, nil)
	events := putEvents(t, s, "r", 1200)
	// A second round without aggregation mixes plain records in.
	plain := open(t, client, name, func(c *Config) { c.NoAggregation = true })
	events = append(events, putEvents(t, plain, "p", 100)...)
	byShard := readAll(t, s)
	checkExactlyOnce(t, events, byShard)

	tried := 0
	for shard, recs := range byShard {
		if tried == 2 {
			break // two shards show it; the emulator is slow
		}
		tried++
		var cases []int // indexes of the record to resume after
		for i, r := range recs[:len(recs)-1] {
			_, sub, _ := parsePosition(r.Seq)
			switch {
			case sub == 0 && len(cases) == 0:
				cases = append(cases, i) // first sub-record of an aggregate
			case sub > 1 && sub != lastSub && len(cases) < 2:
				cases = append(cases, i) // inside an aggregate
			case sub == lastSub && len(cases) >= 2 && len(cases) < 4:
				cases = append(cases, i) // end of a Kinesis record
			}
		}
		cases = append(cases, len(recs)-1)
		for _, i := range cases {
			// A fresh Stream has no cursor: the position alone must resume.
			fresh := open(t, client, name, nil)
			got, _ := readShard(t, fresh, shard, recs[i].Seq, 97)
			if want := recs[i+1:]; !sameRecords(got, want) {
				t.Fatalf("shard %s after %s (record %d): read %d records, want %d", shard, recs[i].Seq, i, len(got), len(want))
			}
			// The same Stream, asked for another position, seeks again.
			got, _ = readShard(t, s, shard, recs[i].Seq, 1000)
			if want := recs[i+1:]; !sameRecords(got, want) {
				t.Fatalf("shard %s re-read after %s: read %d records, want %d", shard, recs[i].Seq, len(got), len(want))
			}
		}
	}
}

func sameRecords(a, b []stream.Record) bool {
	return slices.EqualFunc(a, b, func(x, y stream.Record) bool {
		return x.Seq == y.Seq && x.Key == y.Key && bytes.Equal(x.Data, y.Data)
	})
}

func testReshard(t *testing.T, client *kinesis.Client) {
	name := kinesistest.CreateStream(t, client, 4)
	s := open(t, client, name, nil)
	events := putEvents(t, s, "before", 800)

	// A reader reads part of a parent before the reshard.
	before, err := s.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	partial, err := s.Read(context.Background(), before[0].ID, "", 50)
	if err != nil || len(partial.Records) == 0 {
		t.Fatalf("read %s before the reshard: %d records, %v", before[0].ID, len(partial.Records), err)
	}
	if _, err := client.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{
		StreamName: aws.String(name), TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling,
	}); err != nil {
		t.Fatalf("update shard count: %v", err)
	}
	kinesistest.WaitActive(t, client, name)
	events = append(events, putEvents(t, s, "after", 800)...)

	shards, err := s.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	closed, open := 0, 0
	done := make(map[string]bool)
	byShard := make(map[string][]stream.Record)
	// Read in lineage order: a shard once all its parents ended.
	for len(done) < len(shards) {
		progress := false
		for _, sh := range shards {
			if done[sh.ID] || slices.ContainsFunc(sh.Parents, func(p string) bool { return !done[p] }) {
				continue
			}
			after := ""
			if sh.ID == before[0].ID {
				byShard[sh.ID] = partial.Records
				after = partial.Records[len(partial.Records)-1].Seq
			}
			recs, ended := readShard(t, s, sh.ID, after, 300)
			byShard[sh.ID] = append(byShard[sh.ID], recs...)
			if sh.Closed {
				closed++
				if !ended {
					t.Fatalf("closed shard %s read without Ended", sh.ID)
				}
			} else {
				open++
				if ended {
					t.Fatalf("open shard %s Ended", sh.ID)
				}
				if len(sh.Parents) == 0 {
					t.Fatalf("child shard %s has no parents", sh.ID)
				}
			}
			done[sh.ID] = true
			progress = true
		}
		if !progress {
			t.Fatalf("shard lineage has a cycle or a missing parent: %+v", shards)
		}
	}
	if closed != 4 || open != 8 {
		t.Fatalf("after 4->8: %d closed and %d open shards, want 4 and 8", closed, open)
	}
	checkExactlyOnce(t, events, byShard)
	for _, e := range events[800:] {
		if slices.ContainsFunc(before, func(sh stream.Shard) bool { return sh.ID == e.res.Shard }) {
			t.Fatalf("event %s put after the reshard went to parent %s", e.key, e.res.Shard)
		}
	}
}

func testTooLarge(t *testing.T, client *kinesis.Client) {
	name := kinesistest.CreateStream(t, client, 4)
	for _, plain := range []bool{false, true} {
		s := open(t, client, name, func(c *Config) { c.NoAggregation = plain })
		key := fmt.Sprintf("demo/big-%v", plain)
		entries := []stream.Entry{
			{Key: key + "-a", Data: []byte(`{"id":"a"}`)},
			{Key: key, Data: bytes.Repeat([]byte("x"), maxRecordBytes-len(key)+1)},
			{Key: key + "-b", Data: bytes.Repeat([]byte("y"), maxRecordBytes-len(key)-2)}, // fits, alone
			{Key: "", Data: []byte("no key")},
		}
		res, err := s.Put(context.Background(), entries)
		var pe *PutError
		if !errors.As(err, &pe) || !errors.Is(err, ErrRecordTooLarge) || !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("Put: %v, want a PutError with ErrRecordTooLarge and ErrInvalidKey", err)
		}
		if len(pe.Failed) != 2 || pe.Failed[0].Index != 1 || pe.Failed[1].Index != 3 {
			t.Fatalf("failed entries %+v, want 1 and 3", pe.Failed)
		}
		for _, i := range []int{0, 2} {
			if res[i].Seq == "" {
				t.Fatalf("entry %d: no position", i)
			}
			got, _ := readShard(t, s, res[i].Shard, "", 100)
			if !slices.ContainsFunc(got, func(r stream.Record) bool { return r.Seq == res[i].Seq && bytes.Equal(r.Data, entries[i].Data) }) {
				t.Fatalf("entry %d not read back at %s/%s", i, res[i].Shard, res[i].Seq)
			}
		}
	}
}

// throttle fails the odd-numbered records (every record when all is set)
// of the first calls PutRecords calls with
// ProvisionedThroughputExceededException, without sending them, as a
// throttled Kinesis would.
func throttle(calls int32, count *atomic.Int32, all bool) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("throttle", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			req, ok := in.Parameters.(*kinesis.PutRecordsInput)
			if !ok || (len(req.Records) < 2 && !all) || count.Add(1) > calls {
				return next.HandleInitialize(ctx, in)
			}
			throttled := types.PutRecordsResultEntry{
				ErrorCode:    aws.String("ProvisionedThroughputExceededException"),
				ErrorMessage: aws.String("Rate exceeded for shard (injected)"),
			}
			if all {
				res := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(int32(len(req.Records)))}
				for range req.Records {
					res.Records = append(res.Records, throttled)
				}
				return middleware.InitializeOutput{Result: res}, middleware.Metadata{}, nil
			}
			var keep []types.PutRecordsRequestEntry
			for i, r := range req.Records {
				if i%2 == 0 {
					keep = append(keep, r)
				}
			}
			sub := *req
			sub.Records = keep
			in.Parameters = &sub
			out, md, err := next.HandleInitialize(ctx, in)
			if err != nil {
				return out, md, err
			}
			res := out.Result.(*kinesis.PutRecordsOutput)
			full := make([]types.PutRecordsResultEntry, len(req.Records))
			failed := aws.ToInt32(res.FailedRecordCount)
			for i := range full {
				if i%2 == 0 {
					full[i] = res.Records[i/2]
					continue
				}
				full[i] = throttled
				failed++
			}
			merged := *res
			merged.Records, merged.FailedRecordCount = full, aws.Int32(failed)
			out.Result = &merged
			return out, md, nil
		}), middleware.After)
	}
}

func testThrottled(t *testing.T, endpoint string) {
	var count atomic.Int32
	client := newClient(t, endpoint, throttle(20, &count, false))
	name := kinesistest.CreateStream(t, client, 4)
	for _, plain := range []bool{false, true} {
		count.Store(0)
		s := open(t, client, name, func(c *Config) {
			c.NoAggregation = plain
			c.RetryBase = time.Millisecond
			c.RetryMax = 20 * time.Millisecond
			c.MaxRetries = 30
		})
		events := putEvents(t, s, fmt.Sprintf("t%v", plain), 400)
		if n := counterValue(t, s); n == 0 {
			t.Fatalf("no retries counted after %d throttled calls", count.Load())
		}
		byShard := readAll(t, s)
		checkExactlyOnce(t, events, byShard)
	}

	// Throttled for good: the entries fail, after MaxRetries.
	count.Store(0)
	s := open(t, newClient(t, endpoint, throttle(1<<30, &count, true)), name, func(c *Config) {
		c.NoAggregation = true
		c.RetryBase = time.Millisecond
		c.MaxRetries = 3
	})
	entries := []stream.Entry{{Key: "a", Data: []byte("1")}, {Key: "b", Data: []byte("2")}}
	res, err := s.Put(context.Background(), entries)
	var pe *PutError
	if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), "ProvisionedThroughputExceededException") {
		t.Fatalf("Put always throttled: res %v err %v", res, err)
	}
}

func testBackpressure(t *testing.T, client *kinesis.Client) {
	name := kinesistest.CreateStream(t, client, 4)
	s, err := New(context.Background(), Config{Stream: name, Client: client, MaxBuffered: 10})
	if err != nil {
		t.Fatal(err)
	}
	entries := func(n int) []stream.Entry {
		es := make([]stream.Entry, n)
		for i := range es {
			es[i] = stream.Entry{Key: fmt.Sprintf("k%d", i), Data: []byte("v")}
		}
		return es
	}
	// Run is not running yet, so the first Put stays buffered.
	first := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), entries(8))
		first <- err
	}()
	for s.buffered.Load() != 8 {
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Put(context.Background(), entries(3)); !errors.Is(err, ErrBackpressure) {
		t.Fatalf("Put over MaxBuffered: %v, want ErrBackpressure", err)
	}
	if _, err := s.Put(context.Background(), entries(11)); err == nil || errors.Is(err, ErrBackpressure) {
		t.Fatalf("Put larger than MaxBuffered: %v, want a plain error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if err := <-first; err != nil {
		t.Fatalf("buffered Put once Run runs: %v", err)
	}
	if res, err := s.Put(context.Background(), entries(2)); err != nil || res[1].Seq == "" {
		t.Fatalf("Put after the buffer drained: %v %v", res, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), entries(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Run returned: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Closed without Run: what is buffered fails, never reported stored.
	s, err = New(context.Background(), Config{Stream: name, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := s.Put(context.Background(), entries(3))
		first <- err
	}()
	for s.buffered.Load() != 3 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-first; !errors.Is(err, ErrClosed) {
		t.Fatalf("buffered Put at Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Close with Run running sends what is buffered first.
	s, err = New(context.Background(), Config{Stream: name, Client: client, Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Run(context.Background()) }()
	go func() {
		_, err := s.Put(context.Background(), entries(3))
		first <- err
	}()
	for s.buffered.Load() != 3 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatalf("buffered Put at Close with Run: %v, want stored", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func counterValue(t *testing.T, s *Stream) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.m.putRetries.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// expire fails every other GetRecords call with ExpiredIteratorException,
// as Kinesis does for an iterator older than five minutes.
func expire(count *atomic.Int32) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("expire", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if _, ok := in.Parameters.(*kinesis.GetRecordsInput); ok && count.Add(1)%2 == 1 {
				return middleware.InitializeOutput{}, middleware.Metadata{}, &types.ExpiredIteratorException{Message: aws.String("Iterator expired (injected)")}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	}
}

func testExpired(t *testing.T, endpoint string) {
	var count atomic.Int32
	client := newClient(t, endpoint, expire(&count))
	name := kinesistest.CreateStream(t, client, 4)
	s := open(t, client, name, nil)
	events := putEvents(t, s, "x", 600)
	byShard := readAll(t, s)
	checkExactlyOnce(t, events, byShard)
	if count.Load() < 8 {
		t.Fatalf("only %d GetRecords calls", count.Load())
	}
	// Renewing at a position inside an aggregated record.
	for shard, recs := range byShard {
		for i, r := range recs[:len(recs)-1] {
			if _, sub, _ := parsePosition(r.Seq); sub == lastSub {
				continue
			}
			got, _ := readShard(t, open(t, client, name, nil), shard, r.Seq, 1000)
			if !sameRecords(got, recs[i+1:]) {
				t.Fatalf("shard %s after %s: read %d records, want %d", shard, r.Seq, len(got), len(recs)-i-1)
			}
			return
		}
	}
	t.Fatal("no aggregated record to resume inside")
}
