package redisagg

import (
	"context"
	"slices"
	"testing"

	"github.com/pulsehq/pulse/internal/redistest"
)

// TestKeys pins every key family to the layout docs/redis-keys.md
// documents: other deployments' data and running processes depend on it.
func TestKeys(t *testing.T) {
	k := KeysFor("v1")
	cases := []struct{ got, want string }{
		{k.count("demo", "pageviews", "10s", 1764258000000), "p:v1:{demo}:c:pageviews:10s:1764258000000"},
		{k.top("demo", "pageviews", "path", "1m", 1764258000000), "p:v1:{demo}:t:pageviews:path:1m:1764258000000"},
		{k.unique("demo", "visitors", "10s", 1764258000000), "p:v1:{demo}:u:visitors:10s:1764258000000"},
		{k.checkpoint("demo"), "p:v1:{demo}:ck"},
		{k.position("shard-000001"), "p:v1:{shard-000001}:pos"},
		{k.deltaSeq("demo", "pageviews"), "p:v1:{demo}:dseq:pageviews"},
		{k.scratch("demo"), "p:v1:{demo}:scratch"},
		{k.DeltaLog("demo", "pageviews"), "p:v1:{demo}:dlog:pageviews"},
		{k.DeltaChannel("demo", "pageviews"), "p:v1:{demo}:deltas:pageviews"},
		{k.LeaseMembers(), "p:v1:{lease}:members"},
		{k.LeaseFence(), "p:v1:{lease}:fence"},
		{k.LeaseShard("shard-000001"), "p:v1:{lease}:shard:shard-000001"},
		{k.ArchiveCheckpoint(), "p:v1:{archive}:ck"},
		{k.ArchiveFence(), "p:v1:{archive}:ck:fence"},
		{KeysFor("").ArchiveCheckpoint(), "p:{archive}:ck"},
		{KeysFor("").ArchiveFence(), "p:{archive}:ck:fence"},
		{k.Registry(), "p:{ns}:registry"},
		{KeysFor("v2").Registry(), "p:{ns}:registry"},
		{k.pattern(), "p:v1:*"},
		{k.bucketPattern(kindCount), "p:v1:{*}:c:*"},
		{k.SitePattern("demo"), "p:v1:{demo}:*"},
		{k.SitePattern("a*b"), `p:v1:{a\*b}:*`},
		{KeysFor(`a*b?[c]\`).pattern(), `p:a\*b\?\[c\]\\:*`},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}

// TestKeySlots checks on a real cluster that the keys one script touches
// together share a slot.
func TestKeySlots(t *testing.T) {
	ctx := context.Background()
	c := redistest.StartCluster(t, 3)
	k := KeysFor("v1")
	groups := map[string][]string{
		"site": {k.count("demo", "pageviews", "1m", 0), k.top("demo", "pageviews", "path", "1m", 0),
			k.unique("demo", "visitors", "1m", 0), k.checkpoint("demo"), k.deltaSeq("demo", "pageviews"), k.scratch("demo"),
			k.DeltaLog("demo", "pageviews")},
		"lease":                     {k.LeaseMembers(), k.LeaseFence(), k.LeaseShard("s00"), k.LeaseShard("s07")},
		"archive":                   {k.ArchiveCheckpoint(), k.ArchiveFence()},
		"archive without namespace": {KeysFor("").ArchiveCheckpoint(), KeysFor("").ArchiveFence()},
	}
	for name, keys := range groups {
		var slots []int64
		for _, key := range keys {
			slot, err := c.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots = append(slots, slot)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(slots)))) != 1 {
			t.Errorf("%s keys span slots %v", name, slots)
		}
	}
}
