package archive

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/pulsehq/pulse/event"
)

// TestParquetFreeTypes: the events of /api/event (Plausible's names as
// types, engagement events with their props) go through a Parquet object
// and back unchanged, as replay reads them.
func TestParquetFreeTypes(t *testing.T) {
	evs := []event.Event{
		{ID: "a", Site: "demo", Type: "Outbound Link: Click", TS: 1, RT: 2, URL: "https://demo/", Path: "/",
			Props: map[string]any{"url": "https://x.test/"}},
		{ID: "b", Site: "demo", Type: "Añadir al carrito 🛒", TS: 3, RT: 4},
		{ID: "c", Site: "demo", Type: "404", TS: 5, RT: 6, Path: "/gone"},
		{ID: "d", Site: "demo", Type: "engagement", TS: 7, RT: 8, Path: "/app#/settings",
			Props: map[string]any{"scroll_depth": 80.0, "engaged_ms": 4200.0}},
		{ID: "e", Site: "demo", Type: "Purchase", TS: 9, RT: 10,
			Props: map[string]any{"revenue_amount": 15.99, "revenue_currency": "USD"}},
	}
	rows := make([]row, len(evs))
	for i := range evs {
		if err := evs[i].ValidateFreeType(event.Limits{}); err != nil {
			t.Fatalf("event %s: %v", evs[i].ID, err)
		}
		r, err := toRow("shard-0", "1", &evs[i])
		if err != nil {
			t.Fatal(err)
		}
		rows[i] = r
	}
	b, err := encodeObject(rows)
	if err != nil {
		t.Fatal(err)
	}
	var got []event.Event
	err = decodeObject(bytes.NewReader(b), int64(len(b)), func(r *row) error {
		e, err := r.event()
		got = append(got, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, evs) {
		t.Errorf("read back\n %+v\nwant %+v", got, evs)
	}
}
