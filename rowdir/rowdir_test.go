package rowdir

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pulsehq/pulse/factrow"
)

func TestDir(t *testing.T) {
	ctx := context.Background()
	base := filepath.Join(t.TempDir(), "rows")
	d, err := Open(filepath.Join(base, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 30, 0, 0, time.UTC)
	cur := factrow.HourOf(now.UnixMilli())
	old := cur - 40*24*factrow.HourMs
	steps := []struct {
		site string
		hour int64
		add  string
		want int64
	}{
		{"demo", cur, "abc", 3},
		{"demo", cur, "de", 5},
		{"..", cur, "x", 1}, // a site id that is a path element stays inside
		{"demo", old, "zz", 2},
	}
	for _, s := range steps {
		n, err := d.AppendRows(s.site, s.hour, []byte(s.add))
		if err != nil || n != s.want {
			t.Fatalf("append %q to %s/%d: %d, %v; want %d", s.add, s.site, s.hour, n, err, s.want)
		}
	}
	lens, err := d.RowLengths(ctx, "demo", []int64{old, cur, cur + factrow.HourMs})
	if err != nil || lens[0] != 2 || lens[1] != 5 || lens[2] != 0 {
		t.Fatalf("lengths %v %v", lens, err)
	}
	for _, tc := range []struct {
		from, to int64
		want     string
	}{{0, 5, "abcde"}, {3, 5, "de"}, {3, 9, "de"}, {4, 4, ""}} {
		b, err := d.RowBytes(ctx, "demo", cur, tc.from, tc.to)
		if err != nil || string(b) != tc.want {
			t.Errorf("bytes [%d,%d): %q %v, want %q", tc.from, tc.to, b, err, tc.want)
		}
	}
	if b, err := d.RowBytes(ctx, "nosite", cur, 0, 10); err != nil || len(b) != 0 {
		t.Errorf("bytes of a missing file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(base, "v1", "s_..", strconv.FormatInt(cur, 10)+".rows")); err != nil {
		t.Errorf("the rows of site \"..\" are not inside the namespace's directory: %v", err)
	}
	if err := d.Expire(now, 35*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	lens, _ = d.RowLengths(ctx, "demo", []int64{old, cur})
	if lens[0] != 0 || lens[1] != 5 {
		t.Errorf("after expiry: lengths %v, want the old hour gone and the current kept", lens)
	}
	if err := Reset(base); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Errorf("after Reset the directory exists: %v", err)
	}
}
