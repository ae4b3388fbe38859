package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pulsehq/pulse/event"
)

// Objects lists the archive objects whose partitions (receive hours)
// overlap [from, to), sorted by key: by hour, then shard, then first seq. It lists a whole day's
// prefix where the day lies inside the range and hour prefixes at the ends,
// so a long replay costs about one List per day.
func Objects(ctx context.Context, store ObjectStore, from, to time.Time) ([]ObjectInfo, error) {
	if !from.Before(to) {
		return nil, nil
	}
	first := PartitionOf(from.UnixMilli())
	last := PartitionOf(to.UnixMilli() - 1)
	var out []ObjectInfo
	for p := first; p <= last; {
		prefix := p.Prefix()
		next := p + 1
		if p.Start().Hour() == 0 && p+23 <= last {
			prefix = prefix[:len("dt=2006-01-02/")]
			next = p + 24
		}
		infos, err := store.List(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("archive objects %s: %w", prefix, err)
		}
		for _, o := range infos {
			// Keys that are not archive objects (a README, a foreign
			// file) are skipped, not an error: the bucket is shared.
			if _, err := ParseKey(o.Key); err == nil {
				out = append(out, o)
			}
		}
		p = next
	}
	return out, nil
}

// Read calls fn for every archived event whose ts is in [from, to) and
// that the default event-time rule counts (event.DefaultTimeRule: objects
// are listed over the receive hours that can hold such events), object by
// object in the order of Objects; within an object, in seq order. It
// holds one object in memory at a time (none for a DirStore, whose files are
// read in place), so memory is bounded by the largest object. An error from
// fn stops the read and is returned as is.
func Read(ctx context.Context, store ObjectStore, from, to time.Time, fn func(ev event.Event) error) error {
	lo, hi := from.UnixMilli(), to.UnixMilli()
	rlo, rhi := event.DefaultTimeRule().ReceivedWithin(lo, hi)
	objs, err := Objects(ctx, store, time.UnixMilli(rlo), time.UnixMilli(rhi))
	if err != nil {
		return err
	}
	inRange := func(ts int64) bool { return ts >= lo && ts < hi }
	for _, o := range objs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := readRecords(ctx, store, o.Key, inRange, func(r Record) error { return fn(r.Event) }); err != nil {
			return err
		}
	}
	return nil
}

// readObject decodes one object, reading a local file in place and any
// other body into memory first (Parquet is read from its footer backwards,
// so it needs random access).
func readObject(ctx context.Context, store ObjectStore, key string, fn func(*row) error) error {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if f, ok := rc.(*os.File); ok {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		return decodeObject(f, st.Size(), fn)
	}
	body, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("get body: %w", err)
	}
	return decodeObject(bytes.NewReader(body), int64(len(body)), fn)
}
