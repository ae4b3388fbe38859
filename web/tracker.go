package web

// TrackerSize returns the size in bytes of /tracker.js as embedded and
// gzipped at best compression, the budget the tracker is held to (2 KiB).
func TrackerSize() (raw, gzipped int) {
	// tracker.js is embedded by the directive in web.go, so this cannot fail.
	b, _ := files.ReadFile("tracker.js")
	return len(b), len(gzipBytes(b))
}
