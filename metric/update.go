package metric

import (
	"cmp"
	"slices"
	"strings"
)

// None is the dimension value of an event that lacks the dimension's field,
// so every count event has a value in every dimension of its metric and the
// per-dimension counts of a bucket always sum to its total.
const None = "(none)"

// Other is the value that takes the counts of new dimension values once a
// bucket holds the store's limit of distinct values for that dimension.
const Other = "(other)"

// CountKey identifies one counter: a metric's total in a bucket (Dim == "")
// or the count of one dimension value in a bucket.
type CountKey struct {
	Site   string
	Metric string
	Step   string
	Bucket int64 // bucket start, ms
	Dim    string
	Value  string
}

// UniqueKey identifies one HyperLogLog: a unique metric in a bucket.
type UniqueKey struct {
	Site   string
	Metric string
	Step   string
	Bucket int64
}

// Update is what a batch of events adds to the aggregates, combined in
// memory so that store work grows with distinct keys, not with events.
type Update struct {
	// Counts are the counts of count metrics and the sums, in 10^-Decimals
	// units, of sum and avg metrics.
	Counts  map[CountKey]int64
	Uniques map[UniqueKey]map[string]struct{}
	// Samples are, for avg metrics, how many events carried a number in
	// the metric's field, keyed like Counts: the divisor of each sum.
	Samples map[CountKey]int64
	// Rows are the Stats API's fact rows (package factrow) to append to
	// the string of each site's hour, in event order.
	Rows map[RowKey][]byte
}

// RowKey identifies the fact rows of one site's hour.
type RowKey struct {
	Site string
	Hour int64 // hour start, ms
}

// NewUpdate returns an empty Update.
func NewUpdate() *Update {
	return &Update{Counts: map[CountKey]int64{}, Uniques: map[UniqueKey]map[string]struct{}{}, Samples: map[CountKey]int64{}}
}

// Empty reports whether u changes nothing.
func (u *Update) Empty() bool {
	return len(u.Counts) == 0 && len(u.Uniques) == 0 && len(u.Samples) == 0 && len(u.Rows) == 0
}

// AddUnique records value in the HyperLogLog k.
func (u *Update) AddUnique(k UniqueKey, value string) {
	s := u.Uniques[k]
	if s == nil {
		s = map[string]struct{}{}
		u.Uniques[k] = s
	}
	s[value] = struct{}{}
}

// Position is where the aggregation of one shard stands. It is stored
// atomically with the aggregates it produced, so after a crash reading
// resumes exactly after the last applied record.
type Position struct {
	Seq string // last applied sequence number; "" before the first
	// DedupFrom and DedupClock say how to rebuild the deduplication state
	// as it was after Seq: re-read the shard from DedupFrom (inclusive) to
	// Seq, starting the dedup clock at DedupClock.
	DedupFrom  string
	DedupClock int64
	// Fence is the lease fencing token of the writer; a store refuses a
	// commit whose fence is lower than the stored one. 0 when unleased.
	Fence int64
}

// Commit is one atomic step of a shard's aggregation: the records First..Last
// (inclusive) of Shard produced Update, and after them the shard stands at
// Pos (Pos.Seq == Last).
type Commit struct {
	Shard  string
	First  string
	Last   string
	Pos    Position
	Update *Update
}

// Largest returns the at most k values with the largest totals, ties to
// the smaller value: the order of the top-K sorted sets, which every
// grouped read (the store's and the in-memory source's) keeps.
func Largest(totals map[string]int64, k int) []string {
	names := make([]string, 0, len(totals))
	for n := range totals {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(totals[b], totals[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names[:min(len(names), k)]
}
