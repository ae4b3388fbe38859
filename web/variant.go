package web

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Extensions returns the names of the tracker's optional parts, each a
// marked section of tracker.js, in the order a variant's canonical name
// lists them. Plausible's script extensions have the same names, but for
// "404", which Plausible leaves to the page.
func Extensions() []string {
	return []string{"404", "exclusions", "file-downloads", "hash", "outbound-links"}
}

// sectionMark is an opening /*<a|b>*/ or closing /*</a|b>*/ mark of a
// section of tracker.js.
var sectionMark = regexp.MustCompile(`/\*<(/?)([a-z0-9|-]+)>\*/`)

// buildTracker returns the tracker with the sections of the extensions in
// on and without the others, then without indentation, blank lines and
// whole-line comments: what a variant serves. Marks must pair up and may
// nest; an unknown name in a mark is an error.
func buildTracker(src []byte, on map[string]bool) ([]byte, error) {
	var (
		out  []byte
		open []string // names of the open sections, innermost last
		cut  int      // how many of them are dropped
		pos  int
	)
	for _, m := range sectionMark.FindAllSubmatchIndex(src, -1) {
		if cut == 0 {
			out = append(out, src[pos:m[0]]...)
		}
		pos = m[1]
		names := string(src[m[4]:m[5]])
		if m[3] > m[2] { // closing
			if len(open) == 0 || open[len(open)-1] != names {
				return nil, fmt.Errorf("tracker.js: %s closes no open section", src[m[0]:m[1]])
			}
			open = open[:len(open)-1]
			if cut > 0 {
				cut--
			}
			continue
		}
		keep := false
		for _, n := range strings.Split(names, "|") {
			if !slices.Contains(Extensions(), n) {
				return nil, fmt.Errorf("tracker.js: section %q names no extension", n)
			}
			keep = keep || on[n]
		}
		open = append(open, names)
		if cut > 0 || !keep {
			cut++
		}
	}
	if len(open) > 0 {
		return nil, fmt.Errorf("tracker.js: section %q is not closed", open[len(open)-1])
	}
	out = append(out, src[pos:]...)
	return compact(out), nil
}

// compact drops indentation, blank lines and lines that are only a //
// comment: a fifth of the gzipped size, without a minifier's risk, as no
// line of the tracker starts inside a string.
func compact(src []byte) []byte {
	var out []byte
	for line := range bytes.Lines(src) {
		t := bytes.TrimLeft(line, " \t")
		if len(bytes.TrimSpace(t)) == 0 || bytes.HasPrefix(t, []byte("//")) {
			continue
		}
		out = append(out, t...)
	}
	return out
}

// variantKey is the canonical name of the variant a file name asks for:
// "" for tracker.js, the extensions sorted and joined by "." for
// tracker.NAME.NAME.js, in any order. ok is false for any other name, an
// unknown extension or one named twice.
func variantKey(file string) (key string, ok bool) {
	mid, found := strings.CutPrefix(file, "tracker.")
	if mid, found = strings.CutSuffix(mid, "js"); !found {
		return "", false
	}
	// No longer than all the names: the split below then costs at most
	// five strings, however long a path a client sends.
	if len(mid) > len(strings.Join(Extensions(), "."))+1 {
		return "", false
	}
	if mid == "" {
		return "", true
	}
	mid, found = strings.CutSuffix(mid, ".")
	if !found {
		return "", false
	}
	names := strings.Split(mid, ".")
	slices.Sort(names)
	for i, n := range names {
		if !slices.Contains(Extensions(), n) || i > 0 && names[i-1] == n {
			return "", false
		}
	}
	return strings.Join(names, "."), true
}

// variants returns every variant of the tracker by its canonical name: one
// per subset of Extensions.
func variants(src []byte) (map[string][]byte, error) {
	ext := Extensions()
	out := make(map[string][]byte, 1<<len(ext))
	for mask := range 1 << len(ext) {
		on := map[string]bool{}
		var names []string
		for i, n := range ext {
			if mask&(1<<i) != 0 {
				on[n] = true
				names = append(names, n)
			}
		}
		b, err := buildTracker(src, on)
		if err != nil {
			return nil, err
		}
		out[strings.Join(names, ".")] = b
	}
	return out, nil
}
