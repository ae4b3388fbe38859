package archive

import (
	"context"
	"fmt"
	"strings"

	"github.com/pulsehq/pulse/event"
)

// Record is one archived event with the stream position it was read at.
type Record struct {
	Shard, Seq string
	Event      event.Event
}

// ReadObject calls fn for every record of the object key, in seq order
// (the order the archiver added them). Memory is bounded as for Read. An
// error from fn stops the read and is returned as is.
func ReadObject(ctx context.Context, store ObjectStore, key string, fn func(Record) error) error {
	return readRecords(ctx, store, key, nil, fn)
}

// readRecords is ReadObject for the records whose ts keep accepts (nil:
// all), tested before the event (its props JSON) is decoded.
func readRecords(ctx context.Context, store ObjectStore, key string, keep func(ts int64) bool, fn func(Record) error) error {
	var fnErr error
	err := readObject(ctx, store, key, func(r *row) error {
		if err := ctx.Err(); err != nil {
			fnErr = err
			return err
		}
		if keep != nil && !keep(r.TS) {
			return nil
		}
		ev, err := r.event()
		if err != nil {
			return err
		}
		if err := fn(Record{Shard: r.Shard, Seq: r.Seq, Event: ev}); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("archive read %s: %w", key, err)
	}
	return nil
}

// AllObjects lists every archive object, whatever its partition, with one
// paginated listing (Objects lists a range partition by partition, which
// is what a bounded range wants but far too many calls for "everything").
func AllObjects(ctx context.Context, store ObjectStore) ([]ObjectInfo, error) {
	infos, err := store.List(ctx, "dt=")
	if err != nil {
		return nil, fmt.Errorf("archive objects: %w", err)
	}
	out := infos[:0]
	for _, o := range infos {
		if strings.HasPrefix(o.Key, "dt=") {
			if _, err := ParseKey(o.Key); err == nil {
				out = append(out, o)
			}
		}
	}
	return out, nil
}
