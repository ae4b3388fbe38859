package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Run owns the producer: it sends buffered entries once they have lingered
// Linger or fill a PutRecords call, with up to MaxInFlight calls at once,
// and reloads the shard map. When ctx is done or Close is called it stops
// accepting Puts, sends what is buffered within DrainTimeout, fails the
// rest, and returns nil. Run must be called once.
func (s *Stream) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("kinesis: Run called twice")
	}
	defer close(s.runDone)

	// Calls in flight outlive ctx by up to DrainTimeout.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.cfg.MaxInFlight)
	dispatch := func(recs []*record) {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			s.send(sendCtx, recs)
		})
	}

	refresh := time.NewTicker(s.cfg.ShardRefresh)
	defer refresh.Stop()

	for {
		s.mu.Lock()
		var calls [][]*record
		for s.fullCall() {
			calls = append(calls, s.takeCall())
		}
		wait := time.Duration(-1)
		if !s.firstAt.IsZero() {
			if wait = time.Until(s.firstAt.Add(s.cfg.Linger)); wait <= 0 {
				s.takeAllInto(&calls)
				wait = -1
			}
		}
		s.mu.Unlock()
		for _, c := range calls {
			dispatch(c)
		}
		var lingerC <-chan time.Time
		if wait > 0 {
			lingerC = time.After(wait)
		}
		select {
		case <-s.wake:
		case <-lingerC:
		case <-refresh.C:
			s.reloadShards(ctx)
		case <-s.refreshShard:
			s.reloadShards(ctx)
		case <-ctx.Done():
			return s.drain(dispatch, &wg, cancelSend)
		case <-s.stop:
			return s.drain(dispatch, &wg, cancelSend)
		}
	}
}

// takeAllInto seals everything buffered and splits it into calls.
// Callers hold mu.
func (s *Stream) takeAllInto(calls *[][]*record) {
	for shard := range s.open {
		s.seal(shard)
	}
	for len(s.ready) > 0 {
		*calls = append(*calls, s.takeCall())
	}
	s.firstAt = time.Time{}
}

func (s *Stream) reloadShards(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.refreshShards(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("kinesis reload shard map", "stream", s.cfg.Stream, "err", err)
	}
}

// drain sends what is buffered and waits for calls in flight, at most
// DrainTimeout, then cancels them: their entries fail.
func (s *Stream) drain(dispatch func([]*record), wg *sync.WaitGroup, cancelSend context.CancelFunc) error {
	s.mu.Lock()
	s.closed = true
	var calls [][]*record
	s.takeAllInto(&calls)
	s.mu.Unlock()
	timer := time.AfterFunc(s.cfg.DrainTimeout, cancelSend)
	defer timer.Stop()
	for _, c := range calls {
		dispatch(c)
	}
	wg.Wait()
	return nil
}

// send puts recs with one PutRecords call, then again only the records
// Kinesis refused with a retryable error, with exponential backoff and full
// jitter, until all are stored, fail for good, or MaxRetries is spent.
func (s *Stream) send(ctx context.Context, recs []*record) {
	for _, r := range recs {
		if err := r.encode(); err != nil {
			s.fail(r, fmt.Errorf("kinesis: encode aggregated record: %w", err), "encode")
			r.items = nil
		}
	}
	for attempt := 0; ; attempt++ {
		var retry []*record
		var lastErr error
		retry, lastErr = s.putRecords(ctx, recs)
		if len(retry) == 0 {
			return
		}
		if attempt >= s.cfg.MaxRetries || ctx.Err() != nil {
			for _, r := range retry {
				s.fail(r, fmt.Errorf("kinesis put after %d attempts: %w", attempt+1, lastErr), "retries")
			}
			return
		}
		backoff := min(s.cfg.RetryMax, s.cfg.RetryBase<<min(attempt, 30))
		t := time.NewTimer(rand.N(backoff) + 1)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		s.m.putRetries.Add(float64(len(retry)))
		recs = retry
	}
}

// putTimeout bounds one PutRecords call, SDK retries included.
const putTimeout = 30 * time.Second

// putRecords makes one PutRecords call and finishes the entries of records
// stored or failed for good. It returns the records to retry and why.
func (s *Stream) putRecords(ctx context.Context, recs []*record) ([]*record, error) {
	in, live := s.putRequest(recs)
	if len(live) == 0 {
		return nil, nil
	}
	out, err := s.callPutRecords(ctx, in, len(live))
	if err != nil {
		if retryableCall(err) {
			return live, err
		}
		for _, r := range live {
			s.fail(r, err, "rejected")
		}
		return nil, nil
	}
	var retry []*record
	var lastErr error
	for i, res := range out.Records {
		r := live[i]
		if res.ErrorCode != nil {
			if rerr := s.refused(r, aws.ToString(res.ErrorCode), aws.ToString(res.ErrorMessage)); rerr != nil {
				retry = append(retry, r)
				lastErr = rerr
			}
			continue
		}
		shard, seq := aws.ToString(res.ShardId), aws.ToString(res.SequenceNumber)
		if r.shard != "" && shard != r.shard {
			// The shard map is stale (a reshard): reload it so later
			// aggregates follow the new shards.
			select {
			case s.refreshShard <- struct{}{}:
			default:
			}
			if len(r.items) > 1 {
				var moved error
				if retry, moved = s.landedElsewhere(ctx, r, shard, seq, retry); moved != nil {
					lastErr = moved
				}
				continue
			}
		}
		s.m.eventsPerRecord.Observe(float64(len(r.items)))
		s.succeed(r, shard, seq)
	}
	return retry, lastErr
}

// putRequest builds the PutRecords request for the records that still have
// entries (an encoding failure empties a record) and returns those records,
// in request order, so that results can be matched to them by index.
func (s *Stream) putRequest(recs []*record) (*kinesis.PutRecordsInput, []*record) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String(s.cfg.Stream), Records: make([]types.PutRecordsRequestEntry, 0, len(recs))}
	live := recs[:0:0]
	for _, r := range recs {
		if len(r.items) == 0 {
			continue
		}
		e := types.PutRecordsRequestEntry{Data: r.data, PartitionKey: aws.String(r.key)}
		if r.ehk != "" {
			e.ExplicitHashKey = aws.String(r.ehk)
		}
		in.Records = append(in.Records, e)
		live = append(live, r)
	}
	return in, live
}

// callPutRecords sends in, a request of n records, and records its latency
// and size. An answer whose record count differs from n is an error: the
// results could not be matched to the records.
func (s *Stream) callPutRecords(ctx context.Context, in *kinesis.PutRecordsInput, n int) (*kinesis.PutRecordsOutput, error) {
	start := time.Now()
	// A hung connection must not hold entries forever: the SDK sets no
	// response timeout of its own.
	callCtx, cancel := context.WithTimeout(ctx, putTimeout)
	out, err := s.client.PutRecords(callCtx, in)
	cancel()
	s.m.putSeconds.Observe(time.Since(start).Seconds())
	s.m.recordsPerPut.Observe(float64(n))
	if err == nil && len(out.Records) != n {
		err = fmt.Errorf("PutRecords answered %d records for %d", len(out.Records), n)
	}
	if err != nil {
		return nil, fmt.Errorf("put records to %s: %w", s.cfg.Stream, err)
	}
	return out, nil
}

// refused handles a record Kinesis refused within an accepted call. It
// returns the error to retry it with when the code is one that passes
// (throttling, an internal fault); otherwise it fails the record's entries
// for good and returns nil.
func (s *Stream) refused(r *record, code, msg string) error {
	rerr := fmt.Errorf("put record to %s: %s: %s", s.cfg.Stream, code, msg)
	switch code {
	case "ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException", "ServiceUnavailable":
		return rerr
	}
	s.fail(r, rerr, "rejected")
	return nil
}

// landedElsewhere settles an aggregated record that Kinesis stored at seq in
// shard, not the shard it was packed for. Its user records may belong to
// other children than the one it landed on, where readers drop them
// (inRange): those are appended to retry, each as a plain record that
// Kinesis routes by its own key, and acknowledged from there; the others are
// acknowledged here. The error says why entries are put again, nil if none.
func (s *Stream) landedElsewhere(ctx context.Context, r *record, shard, seq string, retry []*record) ([]*record, error) {
	if rp := s.ranges.Load(); rp == nil || (*rp)[shard] == [2]hashKey{} {
		s.reloadShards(ctx)
	}
	var moved error
	last := len(r.items) - 1
	s.m.eventsPerRecord.Observe(float64(len(r.items)))
	for j, it := range r.items {
		if s.inRange(shard, it.key, "") {
			it.call.finish(it.i, PutResult{Shard: shard, Seq: position(seq, j, j == last)}, nil)
			s.buffered.Add(-1)
			continue
		}
		s.m.misplaced.Inc()
		data := it.data
		if data == nil {
			data = []byte{}
		}
		retry = append(retry, &record{key: it.key, items: []item{it}, data: data, size: len(it.key) + len(data)})
		moved = fmt.Errorf("aggregated record for shard %s landed on %s (reshard): entries of other shards are put again", r.shard, shard)
	}
	return retry, moved
}

// retryableCall reports whether a failed PutRecords call may succeed when
// sent again: the SDK already retried transient faults, but throttling and
// outages longer than its few attempts still deserve our backoff. Requests
// Kinesis refuses as wrong (validation, missing stream, access) do not.
func retryableCall(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ValidationException", "InvalidArgumentException", "ResourceNotFoundException",
			"AccessDeniedException", "KMSAccessDeniedException", "KMSDisabledException",
			"KMSInvalidStateException", "KMSNotFoundException", "KMSOptInRequired",
			"UnrecognizedClientException", "IncompleteSignature", "MissingAuthenticationToken":
			return false
		}
	}
	return true
}
