package web

import (
	"fmt"
	"slices"
	"strings"
)

// TrackerSize returns the size in bytes of the tracker with the given
// extensions (none: /tracker.js) as served with the file's own dedup
// window, and gzipped at best compression: the budget the tracker is held
// to (under 2 KiB without extensions, 2.5 KiB with all).
func TrackerSize(extensions ...string) (raw, gzipped int, err error) {
	key, ok := variantKey("tracker." + strings.Join(slices.Concat(extensions, []string{"js"}), "."))
	if !ok {
		return 0, 0, fmt.Errorf("tracker size: %q is not a set of tracker extensions", extensions)
	}
	src, err := files.ReadFile("tracker.js")
	if err != nil {
		return 0, 0, fmt.Errorf("tracker size: %w", err)
	}
	built, err := variants(src)
	if err != nil {
		return 0, 0, fmt.Errorf("tracker size: %w", err)
	}
	b := built[key]
	return len(b), len(gzipBytes(b)), nil
}
