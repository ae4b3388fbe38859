package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// FuzzDecode checks, for any body: no panic; an error only with one of the
// body-level sentinels; every accepted event passes Validate and survives
// Enrich, Marshal and Unmarshal unchanged; each element is either accepted
// or refused, exactly once, with its index in range.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("[" + ev("a") + "," + ev("b") + "]"))
	f.Add([]byte(ev("a") + "\n" + ev("b") + "\n"))
	lim := Limits{MaxEvents: 20, MaxProps: 4, MaxDepth: 4}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, idx, rejects, err := Decode(body, lim)
		// Decoding into storage that held other events gives the same.
		used := make([]Event, lim.MaxEvents)
		for i := range used {
			used[i] = Event{ID: "stale", Site: "stale", URL: "https://stale.example/", Props: map[string]any{"stale": true}, Visit: Visit{Country: "ZZ"}}
		}
		evs2, idx2, rejects2, err2 := DecodeInto(used, make([]int, lim.MaxEvents), body, lim)
		if fmt.Sprint(err) != fmt.Sprint(err2) || !sameSlice(evs, evs2) || !sameSlice(idx, idx2) || !sameSlice(rejects, rejects2) {
			t.Fatalf("DecodeInto differs from Decode: %v %+v %v, want %v %+v %v", err2, evs2, rejects2, err, evs, rejects)
		}
		// Differential check of the array parser against encoding/json.
		if t := bytes.TrimLeft(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), " \t\r\n"); len(t) > 0 && t[0] == '[' &&
			!errors.Is(err, ErrTooMany) && !errors.Is(err, ErrEmpty) {
			if valid := json.Valid(t); valid != !errors.Is(err, ErrMalformed) {
				t := t
				if len(t) > 200 {
					t = t[:200]
				}
				panic(fmt.Sprintf("json.Valid = %v, Decode error = %v, body %q", valid, err, t))
			}
		}
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooMany) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if evs != nil || rejects != nil {
				t.Fatal("results with an error")
			}
			return
		}
		if len(evs) != len(idx) {
			t.Fatalf("%d events, %d indexes", len(evs), len(idx))
		}
		n := len(evs) + len(rejects)
		if n == 0 || n > lim.MaxEvents {
			t.Fatalf("%d elements", n)
		}
		if want := elements(body); want >= 0 && n != want {
			t.Fatalf("%d results for %d elements", n, want)
		}
		seen := make([]bool, n)
		for _, i := range idx {
			if i < 0 || i >= n || seen[i] {
				t.Fatalf("index %d out of range or repeated (n=%d)", i, n)
			}
			seen[i] = true
		}
		for _, r := range rejects {
			if r.Index < 0 || r.Index >= n || seen[r.Index] {
				t.Fatalf("reject index %d out of range or repeated (n=%d)", r.Index, n)
			}
			seen[r.Index] = true
			if r.Error == "" || r.Reason == "" {
				t.Fatalf("reject without error or reason: %+v", r)
			}
		}
		for i := range evs {
			e := evs[i]
			if err := e.ValidateFreeType(lim); err != nil {
				t.Fatalf("accepted event fails ValidateFreeType: %v", err)
			}
			Enrich(&e, time.UnixMilli(1764258000000), "Mozilla/5.0 (X11; Linux x86_64)")
			b, err := Marshal(&e)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			back, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !reflect.DeepEqual(back, e) {
				t.Fatalf("record round trip:\n got %+v\nwant %+v", back, e)
			}
			var std Event
			if err := json.Unmarshal(b, &std); err != nil || !reflect.DeepEqual(std, e) {
				t.Fatalf("encoding/json reads the record %s as %+v, %v", b, std, err)
			}
		}
	})
}

// elements counts the elements of a body the way Decode splits it, or -1
// when that is not cheap to know independently.
func elements(body []byte) int {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) > 0 && t[0] == '[' {
		var a []json.RawMessage
		if json.Unmarshal(body, &a) != nil {
			return -1
		}
		return len(a)
	}
	if json.Valid(body) {
		return 1
	}
	n := 0
	for line := range bytes.SplitSeq(body, []byte{'\n'}) {
		if len(bytes.TrimLeft(line, " \t\r")) > 0 {
			n++
		}
	}
	return n
}

// sameSlice is reflect.DeepEqual, with nil and empty taken as the same.
func sameSlice[T any](a, b []T) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}
