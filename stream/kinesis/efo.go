package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Enhanced fan-out (Config.EFOConsumer): instead of polling GetRecords, a
// cursor holds one SubscribeToShard subscription, run by a goroutine that
// hands each event to the cursor through a channel of one. The goroutine
// receives the next event only once the cursor took the previous one, and
// the cursor takes one only when it has no records left to return, so at
// most two events per shard are buffered. Events go through the same
// de-aggregation, skip and range rules as GetRecords results (fetch).

// registerConsumer registers the stream consumer named cfg.EFOConsumer, or
// finds the one already registered under that name, and waits until it is
// ACTIVE. It returns the consumer's ARN.
func (s *Stream) registerConsumer(ctx context.Context) (string, error) {
	sum, err := s.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.cfg.Stream)})
	if err != nil {
		return "", fmt.Errorf("describe stream: %w", err)
	}
	streamARN := sum.StreamDescriptionSummary.StreamARN
	name := aws.String(s.cfg.EFOConsumer)
	_, err = s.client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: name})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return "", fmt.Errorf("register consumer %s: %w", s.cfg.EFOConsumer, err)
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		out, err := s.client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: streamARN, ConsumerName: name})
		if err != nil {
			return "", fmt.Errorf("describe consumer %s: %w", s.cfg.EFOConsumer, err)
		}
		d := out.ConsumerDescription
		switch d.ConsumerStatus {
		case types.ConsumerStatusActive:
			return aws.ToString(d.ConsumerARN), nil
		case types.ConsumerStatusDeleting:
			return "", fmt.Errorf("consumer %s is being deleted", s.cfg.EFOConsumer)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("consumer %s not active: %w", s.cfg.EFOConsumer, ctx.Err())
		}
	}
}

// subscription is the goroutine reading one shard's SubscribeToShard
// events, resubscribing as each subscription ends.
type subscription struct {
	cancel context.CancelFunc
	events chan efoEvent // cap 1
	done   chan struct{} // closed when the goroutine returns
}

type efoEvent struct {
	ev  types.SubscribeToShardEvent
	err error // the subscription failed; the goroutine retries after a backoff
}

// subscribe starts c's subscription at start (its SequenceNumber and Type
// as seek computed them from the cursor).
func (s *Stream) subscribe(c *cursor, shard string, start types.StartingPosition) {
	s.unsubscribe(c)
	ctx, cancel := context.WithCancel(s.subCtx)
	sub := &subscription{cancel: cancel, events: make(chan efoEvent, 1), done: make(chan struct{})}
	c.sub = sub
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subClosed {
		cancel()
		close(sub.done)
		return
	}
	s.subWG.Add(1)
	go func() {
		defer s.subWG.Done()
		defer close(sub.done)
		defer cancel()
		s.runSubscription(ctx, sub, shard, start)
	}()
}

// unsubscribe stops c's subscription, if any, and waits for its goroutine.
func (s *Stream) unsubscribe(c *cursor) {
	if c.sub == nil {
		return
	}
	c.sub.cancel()
	<-c.sub.done
	c.sub = nil
}

// closeSubscriptions stops every subscription; later ones end at once.
func (s *Stream) closeSubscriptions() {
	s.subMu.Lock()
	s.subClosed = true
	s.subMu.Unlock()
	s.subCancel()
	s.subWG.Wait()
}

// failuresReported is how many subscription failures in a row, without a
// record passed on in between, make Reads of the shard fail.
const failuresReported = 3

// runSubscription subscribes from start, passes each event on and
// resubscribes after the last record passed on when a subscription ends
// (Kinesis ends each after 5 minutes) or fails, with exponential backoff
// with full jitter after failures. It returns when ctx is done or after
// the event that ends a closed shard.
func (s *Stream) runSubscription(ctx context.Context, sub *subscription, shard string, start types.StartingPosition) {
	failures := 0
	for ctx.Err() == nil {
		ended, progressed, err := s.subscribeOnce(ctx, sub, shard, &start)
		if ended || ctx.Err() != nil {
			return
		}
		if progressed {
			failures = 0
		}
		if err == nil && progressed {
			continue // the subscription's 5 minutes are over
		}
		// Kinesis refuses a second subscription of a consumer to a shard
		// for 5 seconds after the previous one started (a seek restarts
		// it) and limits calls per second: wait, without failing Reads.
		var inUse *types.ResourceInUseException
		var limited *types.LimitExceededException
		switch {
		case err == nil:
			// Ended before its first event: back off rather than spin.
		case errors.As(err, &inUse) || errors.As(err, &limited):
			s.m.subscriptions.WithLabelValues(subRefused).Inc()
			s.log.Debug("kinesis subscription refused, retrying", "shard", shard, "err", err)
		default:
			s.m.subscriptions.WithLabelValues(subFailed).Inc()
			s.log.Warn("kinesis subscription failed, resubscribing", "shard", shard, "err", err, "failures", failures+1)
			// A stream torn mid-way (a reset connection) is resumed
			// from the last record passed on, as the SDK retries a
			// failed GetRecords; Reads see the error only once
			// subscribing keeps failing.
			if failures+1 >= failuresReported {
				select {
				case sub.events <- efoEvent{err: err}:
				case <-ctx.Done():
					return
				}
			}
		}
		failures++
		backoff := min(s.cfg.RetryMax, s.cfg.RetryBase<<min(failures, 20))
		t := time.NewTimer(rand.N(backoff) + s.cfg.RetryBase)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// subscribeOnce runs one subscription from *start to its end, advancing
// *start past every event passed on.
func (s *Stream) subscribeOnce(ctx context.Context, sub *subscription, shard string, start *types.StartingPosition) (ended, progressed bool, err error) {
	client := kinesis.New(s.client.Options(), append([]func(*kinesis.Options){s.streamingHTTP}, s.cfg.EFOClientOptions...)...)
	out, err := client.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(s.consumerARN),
		ShardId:          aws.String(shard),
		StartingPosition: start,
	})
	if err != nil {
		return false, false, fmt.Errorf("subscribe to shard %s: %w", shard, err)
	}
	s.m.subscriptions.WithLabelValues(subOK).Inc()
	s.m.subscribed.Inc()
	defer s.m.subscribed.Dec()
	es := out.GetStream()
	defer es.Close()
	for {
		var e types.SubscribeToShardEventStream
		var ok bool
		select {
		case e, ok = <-es.Events():
		case <-ctx.Done():
			return false, progressed, nil
		}
		if !ok {
			if err := es.Err(); err != nil {
				return false, progressed, fmt.Errorf("shard %s subscription: %w", shard, err)
			}
			return false, progressed, nil
		}
		ev, isEvent := e.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			continue
		}
		select {
		case sub.events <- efoEvent{ev: ev.Value}:
		case <-ctx.Done():
			return false, progressed, nil
		}
		progressed = true
		if shardEnd(ev.Value) {
			return true, true, nil
		}
		// Until a record was passed on, the start (maybe AT a record
		// partly read, or TRIM_HORIZON) stays the place to resubscribe.
		if n := len(ev.Value.Records); n > 0 || start.Type == types.ShardIteratorTypeAfterSequenceNumber {
			next := ev.Value.ContinuationSequenceNumber
			if next == nil && n > 0 {
				next = ev.Value.Records[n-1].SequenceNumber
			}
			if next != nil {
				*start = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: next}
			}
		}
	}
}

// streamingHTTP gives a subscription's client the HTTP client without a
// total timeout, when the Stream's client has one.
func (s *Stream) streamingHTTP(o *kinesis.Options) {
	if s.subHTTP != nil {
		o.HTTPClient = s.subHTTP
	}
}

// shardEnd reports whether ev is the last event of a closed shard: Kinesis
// then names the child shards and gives no continuation.
func shardEnd(ev types.SubscribeToShardEvent) bool {
	return len(ev.ChildShards) > 0 || ev.ContinuationSequenceNumber == nil
}

// receive waits until deadline for c's next subscription event and adds
// its user records to pending. It reports false when none came in time.
func (s *Stream) receive(ctx context.Context, c *cursor, shard string, deadline time.Time) (bool, error) {
	if c.sub == nil {
		return false, fmt.Errorf("read shard %s: %w", shard, ErrClosed)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var e efoEvent
	select {
	case e = <-c.sub.events:
	case <-c.sub.done:
		select {
		case e = <-c.sub.events:
		default:
			return false, fmt.Errorf("read shard %s: %w", shard, ErrClosed)
		}
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, fmt.Errorf("read shard %s: %w", shard, ctx.Err())
	}
	if e.err != nil {
		return false, fmt.Errorf("read shard %s after %q: %w", shard, c.pos, e.err)
	}
	c.behind = aws.ToInt64(e.ev.MillisBehindLatest)
	s.m.millisBehind.WithLabelValues(shard).Set(float64(c.behind))
	for _, r := range e.ev.Records {
		c.pending = s.appendUserRecords(c.pending, shard, r, c.skipSeq, c.skipSub)
	}
	if len(e.ev.Records) > 0 {
		c.skipSeq = ""
	}
	switch {
	case shardEnd(e.ev):
		c.ended = true
	case len(e.ev.Records) == 0 && c.behind == 0 && s.isClosed(shard):
		// Caught up on a closed shard without the end event (kinesis-local
		// never sends it): GetRecords tells whether this is the end.
		ended, err := s.drained(ctx, shard, e.ev.ContinuationSequenceNumber)
		if err != nil {
			s.log.Debug("kinesis closed shard end check", "shard", shard, "err", err)
		}
		if ended {
			c.ended = true
			s.unsubscribe(c)
		}
	}
	return true, nil
}

// drained reports whether closed shard has no record after seq.
func (s *Stream) drained(ctx context.Context, shard string, seq *string) (bool, error) {
	if seq == nil {
		return false, nil
	}
	it, err := s.client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(s.cfg.Stream), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: seq,
	})
	if err != nil {
		return false, fmt.Errorf("get iterator after %s: %w", aws.ToString(seq), err)
	}
	if it.ShardIterator == nil {
		return true, nil
	}
	out, err := s.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
	if err != nil {
		return false, fmt.Errorf("get records after %s: %w", aws.ToString(seq), err)
	}
	return len(out.Records) == 0 && out.NextShardIterator == nil, nil
}

// cursorAt is where a cursor's next Read continues.
type cursorAt struct {
	pos  string
	from bool
}

func (c *cursor) publish() {
	c.at.Store(&cursorAt{c.pos, c.from})
	c.used.Store(time.Now().UnixNano())
}

// cursorFor picks the cursor of a Read after pos (from pos on when from is
// set). With enhanced fan-out a shard has two: the subscription's, kept by
// the reader that follows the shard (the aggregator), and a polling one for
// reads elsewhere (replay, verify, a probe), which must not restart the
// subscription: Kinesis refuses a new one for up to 5s after the last
// started. A read elsewhere takes the subscription only when nobody has
// read through it for a while.
func (s *Stream) cursorFor(shard, pos string, from bool) *cursor {
	c := s.cursor(shard)
	if !c.efo {
		return c
	}
	at := c.at.Load()
	idle := time.Since(time.Unix(0, c.used.Load())) > max(3*s.cfg.ReadWait, 5*time.Second)
	if at == nil || idle || (!from && !at.from && at.pos == pos) {
		return c
	}
	s.cursorsMu.Lock()
	defer s.cursorsMu.Unlock()
	p := s.polled[shard]
	if p == nil {
		p = &cursor{interval: s.cfg.PollEvery}
		s.polled[shard] = p
	}
	return p
}
