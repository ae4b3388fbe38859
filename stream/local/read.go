package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pulsehq/pulse/stream"
)

const (
	defaultReadLimit = 1000
	maxReadLimit     = 10000
	// maxReadBytes bounds one batch (at least one record is returned).
	maxReadBytes = 8 << 20
	// readChunkBytes is the most one ReadAt asks for (unless one record
	// is larger).
	readChunkBytes = 256 << 10
)

// ErrBeyondTip is wrapped by Read when the position asked for is past the
// shard's tip: it does not come from this log (a wiped data dir, or
// another stream's checkpoint).
var ErrBeyondTip = errors.New("local: sequence number beyond the shard's tip")

func formatSeq(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatUint(seq, 10)
}

func parseSeq(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || s[0] == '0' {
		return 0, fmt.Errorf("bad sequence number %q: want a decimal uint64 from 1, no leading zeros", s)
	}
	return v, nil
}

// ReadFrom is Read from the record numbered from, inclusive ("" reads from
// the oldest retained record): the numbers of a shard count up by one, so
// it reads after from-1.
func (l *Log) ReadFrom(ctx context.Context, shard, from string, limit int) (stream.Batch, error) {
	f, err := parseSeq(from)
	if err != nil {
		return stream.Batch{}, fmt.Errorf("read shard %s: %w", shard, err)
	}
	return l.Read(ctx, shard, formatSeq(max(f, 1)-1), limit)
}

// Read returns the records of shard with sequence numbers after `after`
// ("" reads from the oldest retained record), at most limit of them
// (default 1000, at most 10000, and about 8 MiB). When there are none it
// waits up to ReadWait for a Put to land and may return an empty batch.
// When `after` is older than retention kept, the batch starts at the
// oldest retained record and Trimmed is set.
//
// A record that fails its checksum, or is missing inside a sealed
// segment, is an error wrapping ErrCorrupt: it is never skipped silently.
// Reads never block the writer, and any number may run at once.
//
// The records of a batch share their backing memory (one buffer for the
// data, one string for the seqs and keys): whoever keeps a record long
// after the batch, such as a checkpointed Seq, keeps that memory alive and
// may want to copy it (strings.Clone).
func (l *Log) Read(ctx context.Context, shard, after string, limit int) (stream.Batch, error) {
	s, ok := l.byID[shard]
	if !ok {
		return stream.Batch{}, fmt.Errorf("read shard %s: no such shard", shard)
	}
	a, err := parseSeq(after)
	if err != nil {
		return stream.Batch{}, fmt.Errorf("read shard %s: %w", shard, err)
	}
	if limit <= 0 {
		limit = defaultReadLimit
	}
	limit = min(limit, maxReadLimit)
	var timer *time.Timer
	for {
		select {
		case <-l.closing:
			return stream.Batch{}, fmt.Errorf("read shard %s: %w", shard, ErrClosed)
		default:
		}
		v := s.view()
		if a > v.tip {
			return stream.Batch{}, fmt.Errorf("read shard %s after %d: %w %d", shard, a, ErrBeyondTip, v.tip)
		}
		start := max(a+1, v.oldest)
		trimmed := after != "" && a+1 < v.oldest
		if start <= v.tip {
			b, err := l.readRecords(s, start, limit)
			if err != nil {
				return stream.Batch{}, fmt.Errorf("read shard %s after %s: %w", shard, after, err)
			}
			// Retention may also have overtaken us while reading; that
			// is no loss for a reader that asked for the oldest.
			b.Trimmed = (b.Trimmed && after != "") || trimmed
			return b, nil
		}
		if timer == nil {
			timer = time.NewTimer(l.cfg.ReadWait)
			defer timer.Stop()
		}
		s.waiting.Add(1)
		select {
		case <-v.notify:
			s.waiting.Add(-1)
		case <-timer.C:
			s.waiting.Add(-1)
			return stream.Batch{Trimmed: trimmed}, nil
		case <-ctx.Done():
			s.waiting.Add(-1)
			return stream.Batch{}, fmt.Errorf("read shard %s: %w", shard, ctx.Err())
		case <-l.closing:
			s.waiting.Add(-1)
			return stream.Batch{}, fmt.Errorf("read shard %s: %w", shard, ErrClosed)
		}
	}
}

// readRecords reads from seq on, which is at most the tip.
func (l *Log) readRecords(s *shard, seq uint64, limit int) (stream.Batch, error) {
	b := stream.Batch{Records: make([]stream.Record, 0, min(limit, 1024))}
	bytes := 0
	for len(b.Records) < limit && bytes < maxReadBytes {
		sv, ok := s.locate(seq)
		if !ok {
			// Retention deleted seq's segment since we looked.
			if len(b.Records) > 0 {
				break
			}
			seq = s.view().oldest
			b.Trimmed = true
			continue
		}
		if seq > sv.last {
			if sv.sealed && len(b.Records) > 0 {
				break // the error comes with the next read
			}
			if sv.sealed {
				if sv.damaged != nil {
					return stream.Batch{}, fmt.Errorf("record %d: %w", seq, sv.damaged)
				}
				return stream.Batch{}, fmt.Errorf("record %d: %w: missing from %s", seq, ErrCorrupt, sv.g.path)
			}
			break // the tip
		}
		next, n, err := l.readSegment(sv, seq, limit-len(b.Records), maxReadBytes-bytes, &b.Records)
		if errors.Is(err, errSegmentGone) {
			select {
			case <-l.closing:
				return stream.Batch{}, ErrClosed
			default:
			}
			if len(b.Records) > 0 {
				break
			}
			continue // locate again: retention took it off the list first
		}
		if err != nil && len(b.Records) > 0 {
			break // the error comes with the next read
		}
		if err != nil {
			return stream.Batch{}, err
		}
		bytes += n
		seq = next
		if seq <= sv.last {
			break // a limit stopped us inside the segment
		}
	}
	if len(b.Records) > 0 {
		b.BehindRecords = int64(s.view().tip - (seq - 1))
		b.BehindMillis = max(0, l.cfg.Now().Sub(b.Records[len(b.Records)-1].Arrival).Milliseconds())
	}
	return b, nil
}

// readSegment appends the records of one segment from seq to its durable
// end to out, within the limits, and returns the next seq to read and the
// bytes it added. Data of the records alias buffers allocated here, never
// reused, so one allocation serves many records.
func (l *Log) readSegment(sv segView, seq uint64, limit, maxBytes int, out *[]stream.Record) (uint64, int, error) {
	_, off := lookup(sv.index, seq)
	added, bytes := 0, 0
	// Seqs and keys go into one string, which the records slice, rather
	// than two small allocations per record.
	first := len(*out)
	guess := min(limit, 1024)
	text := make([]byte, 0, guess*32)
	spans := make([]int, 0, 2*guess) // per record: end of its seq, end of its key in text
	defer func() {
		str := string(text)
		recs := (*out)[first:]
		start := 0
		for i := range recs {
			recs[i].Seq = str[start:spans[2*i]]
			recs[i].Key = str[spans[2*i]:spans[2*i+1]]
			start = spans[2*i+1]
		}
	}()
	var buf []byte
	p := 0 // position of off in buf
	for added < limit && bytes < maxBytes && off < sv.size {
		if len(buf)-p < headerSize {
			if sv.size-off < headerSize {
				return seq, bytes, fmt.Errorf("%s offset %d: %w: %w", sv.g.path, off, ErrCorrupt, errShort)
			}
			var err error
			if buf, err = readChunk(sv, off, headerSize, limit-added); err != nil {
				return seq, bytes, err
			}
			p = 0
		}
		n, err := recordLen(buf[p:])
		if err != nil {
			return seq, bytes, fmt.Errorf("%s offset %d: %w", sv.g.path, off, err)
		}
		if len(buf)-p < n {
			if sv.size-off < int64(n) {
				return seq, bytes, fmt.Errorf("%s offset %d: %w: record runs past the durable end", sv.g.path, off, ErrCorrupt)
			}
			if buf, err = readChunk(sv, off, n, limit-added); err != nil {
				return seq, bytes, err
			}
			p = 0
		}
		rec, _, err := decodeRecord(buf[p:])
		if err != nil {
			return seq, bytes, fmt.Errorf("%s offset %d: %w", sv.g.path, off, err)
		}
		p += n
		off += int64(n)
		if rec.Seq < seq {
			continue // between the index entry and seq
		}
		if rec.Seq != seq {
			return seq, bytes, fmt.Errorf("%s offset %d: %w: sequence %d where %d was due", sv.g.path, off-int64(n), ErrCorrupt, rec.Seq, seq)
		}
		text = strconv.AppendUint(text, rec.Seq, 10)
		spans = append(spans, len(text))
		text = append(text, rec.Key...)
		spans = append(spans, len(text))
		*out = append(*out, stream.Record{Data: rec.Data, Arrival: time.UnixMilli(rec.ArrivalMs)})
		seq++
		added++
		bytes += n
	}
	return seq, bytes, nil
}

// readChunk reads at least need bytes at off (which the caller checked
// are durable), more when more records are wanted, within the segment.
func readChunk(sv segView, off int64, need, wanted int) ([]byte, error) {
	size := int64(max(need, min(readChunkBytes, indexEvery+wanted*512)))
	size = min(size, sv.size-off)
	buf := make([]byte, size)
	m, err := sv.g.readAt(buf, off)
	if int64(m) == size {
		return buf, nil
	}
	if errors.Is(err, errSegmentGone) {
		return nil, err
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("read %s offset %d: %w", sv.g.path, off, err)
}
