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
