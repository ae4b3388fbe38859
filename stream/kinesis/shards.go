package kinesis

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/pulsehq/pulse/stream"
)

// hashKey is a 128-bit Kinesis hash key: the MD5 of a partition key read as
// a big-endian unsigned integer.
type hashKey struct{ hi, lo uint64 }

func hashOf(partitionKey string) hashKey {
	sum := md5.Sum([]byte(partitionKey))
	return hashKey{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

func (h hashKey) less(o hashKey) bool {
	return h.hi < o.hi || h.hi == o.hi && h.lo < o.lo
}

// String is the decimal form Kinesis takes as ExplicitHashKey.
func (h hashKey) String() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], h.hi)
	binary.BigEndian.PutUint64(b[8:], h.lo)
	return new(big.Int).SetBytes(b[:]).String()
}

func parseHashKey(s string) (hashKey, error) {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return hashKey{}, fmt.Errorf("hash key %q: not a 128-bit decimal", s)
	}
	var b [16]byte
	n.FillBytes(b[:])
	return hashKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, nil
}

// shardMap routes hash keys to the open shards, sorted by range start.
type shardMap struct {
	ids   []string
	start []hashKey
	end   []hashKey
}

// lookup returns the open shard whose range holds h, or "" when none does
// (a map caught mid-reshard).
func (m *shardMap) lookup(h hashKey) string {
	if m == nil {
		return ""
	}
	i := sort.Search(len(m.start), func(i int) bool { return h.less(m.start[i]) }) - 1
	if i < 0 || m.end[i].less(h) {
		return ""
	}
	return m.ids[i]
}

func newShardMap(shards []types.Shard) (*shardMap, error) {
	var open []types.Shard
	for _, sh := range shards {
		if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, sh)
		}
	}
	m := &shardMap{}
	type entry struct {
		id         string
		start, end hashKey
	}
	es := make([]entry, 0, len(open))
	for _, sh := range open {
		if sh.HashKeyRange == nil {
			return nil, fmt.Errorf("shard %s: no hash key range", aws.ToString(sh.ShardId))
		}
		start, err := parseHashKey(aws.ToString(sh.HashKeyRange.StartingHashKey))
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", aws.ToString(sh.ShardId), err)
		}
		end, err := parseHashKey(aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", aws.ToString(sh.ShardId), err)
		}
		es = append(es, entry{aws.ToString(sh.ShardId), start, end})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].start.less(es[j].start) })
	for _, e := range es {
		m.ids = append(m.ids, e.id)
		m.start = append(m.start, e.start)
		m.end = append(m.end, e.end)
	}
	return m, nil
}

// listShards returns every shard of the stream, following NextToken.
func (s *Stream) listShards(ctx context.Context) ([]types.Shard, error) {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(s.cfg.Stream)}
	for {
		out, err := s.client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", s.cfg.Stream, err)
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all, nil
		}
		// With a NextToken the stream name must be left out.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// Shards lists the shards of the stream with their parents (after a
// reshard, a child is read once its parents are read to their end) and
// whether they are closed. It also refreshes the producer's shard map.
func (s *Stream) Shards(ctx context.Context) ([]stream.Shard, error) {
	shards, err := s.listShards(ctx)
	if err != nil {
		return nil, err
	}
	s.setShardMap(shards)
	out := make([]stream.Shard, 0, len(shards))
	for _, sh := range shards {
		r := stream.Shard{ID: aws.ToString(sh.ShardId)}
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if aws.ToString(p) != "" {
				r.Parents = append(r.Parents, *p)
			}
		}
		r.Closed = sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
		out = append(out, r)
	}
	return out, nil
}

// refreshShards reloads the producer's shard map.
func (s *Stream) refreshShards(ctx context.Context) error {
	shards, err := s.listShards(ctx)
	if err != nil {
		return err
	}
	s.setShardMap(shards)
	return nil
}

func (s *Stream) setShardMap(shards []types.Shard) {
	ranges := make(map[string][2]hashKey, len(shards))
	for _, sh := range shards {
		if sh.HashKeyRange == nil {
			continue
		}
		start, err1 := parseHashKey(aws.ToString(sh.HashKeyRange.StartingHashKey))
		end, err2 := parseHashKey(aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err1 == nil && err2 == nil {
			ranges[aws.ToString(sh.ShardId)] = [2]hashKey{start, end}
		}
	}
	s.ranges.Store(&ranges)
	closed := make(map[string]bool)
	for _, sh := range shards {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			closed[aws.ToString(sh.ShardId)] = true
		}
	}
	s.closedShards.Store(&closed)
	m, err := newShardMap(shards)
	if err != nil {
		s.log.Warn("kinesis shard map", "stream", s.cfg.Stream, "err", err)
		return
	}
	s.shards.Store(m)
}

// inRange reports whether a user record with partition key key (or
// explicit hash key ehk) belongs to shard's hash key range; true when the
// range is unknown.
//
// After a reshard, an aggregated record packed with a stale shard map can
// land on a child that does not own every user record in it (the record's
// explicit hash key picks one child). The producer puts those user records
// again, one plain record each, onto their own shards before it
// acknowledges them (putRecords), so the reader drops the copies outside
// the shard's range, as the KCL's de-aggregation does. Every user record is
// then read from the one shard its key hashes to, where retries of it meet
// it for deduplication.
func (s *Stream) inRange(shard, key, ehk string) bool {
	rp := s.ranges.Load()
	if rp == nil {
		return true
	}
	r, ok := (*rp)[shard]
	if !ok {
		return true
	}
	h := hashOf(key)
	if ehk != "" {
		var err error
		if h, err = parseHashKey(ehk); err != nil {
			return true
		}
	}
	return !h.less(r[0]) && !r[1].less(h)
}

// isClosed reports whether shard was closed at the last listing.
func (s *Stream) isClosed(shard string) bool {
	cp := s.closedShards.Load()
	return cp != nil && (*cp)[shard]
}
