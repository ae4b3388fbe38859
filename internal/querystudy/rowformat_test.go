package querystudy

import (
	"testing"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkRowFormats reports B's bytes per row and per site-day for a day
// of the normal site (plain rows as appended, the hour compacted, and the
// compacted hour under zstd), and the Go time to decode each per row.
// Run: go test -run '^$' -bench BenchmarkRowFormats ./internal/querystudy
func BenchmarkRowFormats(b *testing.B) {
	if testing.Short() {
		b.Skip("heavy: generates a day of events")
	}
	for _, s := range []shape{normalSite(), bigSite()} {
		segs := map[int64]*segment{}
		hours(genDay(1, s, 0), map[string]bool{}, segs)
		var plain, comp, zst [][]byte
		rows, cache := 0, 0
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		for h, seg := range segs {
			var blob []byte
			for i := range seg.ts {
				blob = appendSegmentRow(blob, seg, i)
			}
			plain = append(plain, blob)
			c := compact(seg)
			comp = append(comp, c)
			zst = append(zst, enc.EncodeAll(c, nil))
			rows += seg.rows()
			cache += seg.bytes()
			_ = h
		}
		b.Logf("%s site-day: %d rows, %d cube rows (distinct goal, page, host, referrer, device, plan), %d distinct visitors",
			s.name, rows, cubeRows(segs), distinctDay(segs))
		dec, _ := zstd.NewReader(nil)
		decoders := map[string]func(i int) error{
			"plain": func(i int) error {
				return decodePlain(plain[i], newSegment(0))
			},
			"compact": func(i int) error {
				_, err := decodeCompact(comp[i])
				return err
			},
			"compact+zstd": func(i int) error {
				raw, err := dec.DecodeAll(zst[i], nil)
				if err != nil {
					return err
				}
				_, err = decodeCompact(raw)
				return err
			},
		}
		blobs := map[string][][]byte{"plain": plain, "compact": comp, "compact+zstd": zst}
		for _, name := range []string{"plain", "compact", "compact+zstd"} {
			b.Run(s.name+"/"+name, func(b *testing.B) {
				total := 0
				for _, blob := range blobs[name] {
					total += len(blob)
				}
				for range b.N {
					for i := range blobs[name] {
						if err := decoders[name](i); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows), "decode-ns/row")
				b.ReportMetric(float64(total)/float64(rows), "bytes/row")
				b.ReportMetric(float64(total)/1e6, "MB/site-day")
				b.ReportMetric(float64(cache)/1e6, "decoded-MB/site-day")
			})
		}
	}
}

// cubeRows counts a day's distinct (goal, page, host, referrer, device,
// plan): the rows of a daily rollup that would answer counts and sums
// without visitors.
func cubeRows(segs map[int64]*segment) int {
	seen := map[string]struct{}{}
	for _, s := range segs {
		for i := range s.ts {
			k := s.goals.values[s.goal[i]] + "\x1f" + s.pages.values[s.page[i]] + "\x1f" + s.hosts.values[s.host[i]] + "\x1f" +
				s.refs.values[s.ref[i]] + "\x1f" + s.devices.values[s.device[i]] + "\x1f" + s.plans.values[s.plan[i]]
			seen[k] = struct{}{}
		}
	}
	return len(seen)
}

func distinctDay(segs map[int64]*segment) int {
	seen := map[uint64]struct{}{}
	for _, s := range segs {
		for _, v := range s.visitor {
			seen[v] = struct{}{}
		}
	}
	return len(seen)
}
