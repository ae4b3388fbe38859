package replay

import (
	"fmt"
	"testing"
)

// FuzzParseBucketKey checks the key parser verify uses on whatever SCAN
// returns: no panic, and a key it accepts is exactly the one its parts
// make.
func FuzzParseBucketKey(f *testing.F) {
	f.Add("p:v1:{demo}:c:pageviews:1m:1764258000000", "v1", "c")
	f.Add("p:v1:{demo}:u:visitors:10s:1764258000000", "v1", "u")
	f.Add("p:v1:{a}:c:b}:c:x:1m:5", "v1", "c")
	f.Add("p:v1:{demo}:t:pageviews:path:1m:1764258000000", "v1", "c")
	f.Fuzz(func(t *testing.T, key, ns, kind string) {
		site, m, step, b, ok := parseBucketKey(key, ns, kind)
		if !ok {
			return
		}
		if back := fmt.Sprintf("p:%s:{%s}:%s:%s:%s:%d", ns, site, kind, m, step, b); back != key {
			// Leading zeros or a '+' in the bucket parse to the same
			// number; anything else must round-trip.
			if _, _, _, b2, ok2 := parseBucketKey(back, ns, kind); !ok2 || b2 != b {
				t.Fatalf("%q parsed to site %q metric %q step %q bucket %d, which make %q", key, site, m, step, b, back)
			}
		}
	})
}
