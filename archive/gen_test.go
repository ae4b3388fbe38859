package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pulsehq/pulse/event"
)

// testRec is one stream record as the archiver sees it.
type testRec struct {
	shard, seq string
	data       []byte
	ev         event.Event
}

var (
	genSites   = []string{"demo", "shop", "blog"}
	genTypes   = []string{"pageview", "pageview", "pageview", "click", "signup", "scroll"}
	genDevices = []string{"desktop", "mobile", "tablet", "bot", ""}
	genRefs    = []string{"", "", "https://news.example/", "https://www.google.com/", "https://t.co/x1", "https://github.com/pulsehq"}
)

// genRecords makes n events spread over shards (round-robin interleaved, as
// an archiver reading shards in parallel sees them) with event times over
// hours hours from start, some late by up to two hours. Shard 0 uses
// 56-digit Kinesis-like seqs, the others local-log uint64 seqs.
func genRecords(seed uint64, n, shards, hours int, start time.Time) []testRec {
	rng := rand.New(rand.NewPCG(seed, 1))
	seqs := make([]*big.Int, shards)
	for i := range seqs {
		seqs[i] = big.NewInt(int64(1 + i*1000))
	}
	seqs[0], _ = new(big.Int).SetString("49590338271490256608559692538361571095921575989136588898", 10)
	span := int64(hours) * int64(time.Hour/time.Millisecond)
	out := make([]testRec, 0, n)
	for i := 0; i < n; i++ {
		sh := i % shards
		seqs[sh].Add(seqs[sh], big.NewInt(int64(1+rng.IntN(3))))
		// Records arrive in order of rt; a late event's ts lags its rt.
		rt := start.UnixMilli() + span*int64(i)/int64(n)
		ts := rt - rng.Int64N(3000)
		if rng.IntN(20) == 0 { // late event
			ts -= rng.Int64N(2 * int64(time.Hour/time.Millisecond))
		}
		ts = max(ts, start.UnixMilli())
		path := fmt.Sprintf("/p/%d", rng.IntN(150))
		ev := event.Event{
			ID:     fmt.Sprintf("01JDX6T8Q5%016X", rng.Uint64()),
			Site:   genSites[rng.IntN(len(genSites))],
			Type:   genTypes[rng.IntN(len(genTypes))],
			TS:     ts,
			URL:    "https://example.com" + path,
			Path:   path,
			UID:    fmt.Sprintf("u-%05d", rng.IntN(5000)),
			RT:     rt,
			Device: genDevices[rng.IntN(len(genDevices))],
		}
		if rng.IntN(10) == 0 {
			ev.UID = ""
		}
		ev.Bot = ev.Device == "bot"
		if rng.IntN(3) > 0 { // the visit fields ingest derives; none on older records
			ev.Visit = event.Visit{Source: []string{"", "Google", "Hacker News", "t.co"}[rng.IntN(4)],
				Browser: []string{"Chrome", "Firefox", "Safari"}[rng.IntN(3)], BrowserVersion: fmt.Sprint(100 + rng.IntN(40)),
				OS: []string{"Windows", "Android", "iOS"}[rng.IntN(3)], OSVersion: fmt.Sprint(rng.IntN(15)),
				Country: []string{"", "DE", "US", "BR"}[rng.IntN(4)]}
			if rng.IntN(4) == 0 {
				ev.UTMSource, ev.UTMMedium, ev.UTMCampaign, ev.UTMContent, ev.UTMTerm = "news", "email", "launch", "", "a b"
			}
		}
		if ref := genRefs[rng.IntN(len(genRefs))]; ref != "" {
			ev.Ref = ref
			ev.RefHost = ref[len("https://"):]
			ev.RefHost = ev.RefHost[:len(ev.RefHost)-len(ev.RefHost[indexSlash(ev.RefHost):])]
		}
		switch rng.IntN(4) {
		case 1:
			ev.Props = map[string]any{"plan": "pro", "price": float64(rng.IntN(100))}
		case 2:
			ev.Props = map[string]any{"target": fmt.Sprintf("#btn-%d", rng.IntN(20)), "ok": rng.IntN(2) == 0}
		}
		data, err := json.Marshal(ev)
		if err != nil {
			panic(err)
		}
		out = append(out, testRec{shard: fmt.Sprintf("shardId-%012d", sh), seq: seqs[sh].String(), data: data, ev: ev})
	}
	return out
}

func indexSlash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

// encodeRecs encodes recs as one archive object, as the writer does.
func encodeRecs(tb testing.TB, recs []testRec) []byte {
	tb.Helper()
	var rows []row
	for _, r := range recs {
		x, err := toRow(r.shard, r.seq, &r.ev)
		if err != nil {
			tb.Fatal(err)
		}
		rows = append(rows, x)
	}
	body, err := encodeObject(rows)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// encodeObject writes rows (all of one shard, in seq order) as one object,
// as the writer does row by row.
func encodeObject(rows []row) ([]byte, error) {
	if len(rows) == 0 {
		return nil, errors.New("encode object: no rows")
	}
	e := newEncoder(rows[0].Shard, rows[0].Seq)
	for i := range rows {
		if err := e.write(&rows[i]); err != nil {
			return nil, fmt.Errorf("encode object: %w", err)
		}
	}
	return e.close()
}
