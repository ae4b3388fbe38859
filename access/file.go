package access

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/pulsehq/pulse/event"
)

// Limits of the secrets files.
const (
	// MinSecret is the fewest bytes in a read token, admin token or write
	// key: 16 random printable bytes are beyond guessing at any request
	// rate, and a shorter one is more likely a slip (a site id, a
	// placeholder) than a secret.
	MinSecret     = 16
	maxSecret     = 512     // bytes in a token or key
	maxFileBytes  = 1 << 20 // a secrets file is small; a larger one is a mistake
	maxFileSecret = 100_000 // entries
)

// LoadReadTokens reads a read-tokens file (see ParseReadTokens).
func LoadReadTokens(path string, known []string) ([]ReadToken, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	return ParseReadTokens(b, path, known)
}

// ParseReadTokens parses a read-tokens file named name (for messages): one
// TOKEN=SITES per line, SITES being "*" (every site) or a comma-separated
// list of site ids; blank lines and lines starting with # are skipped. The
// line is split at its last "=", since a site id holds none and a token
// (base64 padding) may. A token is 16 to 512 printable ASCII bytes without
// spaces, and is none of the site ids named in the file or in known: such
// a token is a swapped line (SITES=TOKEN), which would otherwise grant the
// secret's "site" to anyone who knows the site's name. Errors name the
// file and line, never the token, nor a site id that may be one.
func ParseReadTokens(b []byte, name string, known []string) ([]ReadToken, error) {
	var out []ReadToken
	seen := map[hash]int{}
	sites := siteLines(known)
	err := eachLine(b, name, func(n int, line string) error {
		i := strings.LastIndexByte(line, '=')
		if i < 0 {
			return fmt.Errorf("%s:%d: want TOKEN=SITES (SITES: * or site1,site2)", name, n)
		}
		tok, list := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		if msg := checkSecret(tok); msg != "" {
			return fmt.Errorf("%s:%d: token %s (want TOKEN=SITES)", name, n, msg)
		}
		h := hashOf(tok)
		if first, dup := seen[h]; dup {
			return fmt.Errorf("%s:%d: token repeated (first on line %d)", name, n, first)
		}
		seen[h] = n
		scope, named, err := parseScope(list)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		for _, site := range named {
			if _, ok := sites[site]; !ok {
				sites[site] = n
			}
		}
		out = append(out, ReadToken{Token: tok, Scope: scope, line: n})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, rt := range out {
		if at, ok := sites[rt.Token]; ok {
			return nil, fmt.Errorf("%s:%d: token equals a site id (%s): a swapped line? want TOKEN=SITES", name, rt.line, where(name, at))
		}
	}
	return out, nil
}

// siteLines starts the map from a site id to the line of the file that
// first names it with the known sites, at line 0 (named outside the file).
func siteLines(known []string) map[string]int {
	m := make(map[string]int, len(known))
	for _, s := range known {
		m[s] = 0
	}
	return m
}

// where says where a site id equal to a secret was named, without it.
func where(name string, line int) string {
	if line == 0 {
		return "one of the configured sites"
	}
	return fmt.Sprintf("named on %s:%d", name, line)
}

// parseScope parses SITES. An id that is not one is not quoted: on a
// swapped line it is the token.
func parseScope(s string) (Scope, []string, error) {
	if s == "*" {
		return AllSites(), nil, nil
	}
	if s == "" {
		return Scope{}, nil, fmt.Errorf("no sites after = (want * or site1,site2)")
	}
	var sites []string
	for i, site := range strings.Split(s, ",") {
		site = strings.TrimSpace(site)
		if !IsSite(site) {
			return Scope{}, nil, fmt.Errorf("site %d of the list is not a site id: each must match [a-z0-9_.-]{1,64} (or the whole list be *); a swapped line? want TOKEN=SITES", i+1)
		}
		sites = append(sites, site)
	}
	return SitesScope(sites...), sites, nil
}

// LoadWriteKeys reads a write-keys file (see ParseWriteKeys).
func LoadWriteKeys(path string, known []string) (*WriteKeys, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	return ParseWriteKeys(b, path, known)
}

// ParseWriteKeys parses a write-keys file named name (for messages): one
// "SITE=KEY ORIGINS" per line, split at the first "=", ORIGINS optional;
// blank lines and lines starting with # are skipped. A key is 16 to 512
// printable ASCII bytes without spaces, and is none of the sites of the
// file or of known (a swapped line); a site has one key. ORIGINS are the
// pages that may send the site's events without the key: origin patterns
// as --ingest-origins takes them (see NewOrigins), separated by commas or
// spaces, "*" excluded. Errors name the file and line, never the key, and
// not the site either: on a swapped line (KEY=SITE) the site's place holds
// the key.
func ParseWriteKeys(b []byte, name string, known []string) (*WriteKeys, error) {
	w := &WriteKeys{keys: map[string]hash{}, origins: map[string]Origins{}}
	lines := map[string]int{}
	keyLines := map[hash]int{}
	err := eachLine(b, name, func(n int, line string) error {
		site, rest, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want SITE=KEY [ORIGINS]", name, n)
		}
		site = strings.TrimSpace(site)
		fields := strings.Fields(rest)
		key := ""
		if len(fields) > 0 {
			key = fields[0]
		}
		if !IsSite(site) {
			return fmt.Errorf("%s:%d: the text before = is not a site id: it must match [a-z0-9_.-]{1,64}; a swapped line? want SITE=KEY [ORIGINS]", name, n)
		}
		if msg := checkSecret(key); msg != "" {
			return fmt.Errorf("%s:%d: key %s (want SITE=KEY [ORIGINS])", name, n, msg)
		}
		if first, dup := lines[site]; dup {
			return fmt.Errorf("%s:%d: the site has a key already (line %d)", name, n, first)
		}
		patterns, err := pagePatterns(fields[1:])
		if err != nil {
			return fmt.Errorf("%s:%d: origins: %w", name, n, err)
		}
		lines[site] = n
		w.keys[site] = hashOf(key)
		keyLines[hashOf(key)] = n
		if len(patterns) > 0 {
			w.origins[site] = NewOrigins(patterns)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sites := siteLines(known)
	for site, n := range lines {
		sites[site] = n
	}
	for site, at := range sites {
		if n, ok := keyLines[hashOf(site)]; ok {
			return nil, fmt.Errorf("%s:%d: key equals a site id (%s): a swapped line? want SITE=KEY [ORIGINS]", name, n, where(name, at))
		}
	}
	return w, nil
}

// pagePatterns splits the origin fields of a write-keys line. Patterns
// are not quoted in errors: a key mistyped with a space would land here.
func pagePatterns(fields []string) ([]string, error) {
	var out []string
	for _, f := range fields {
		for _, p := range strings.Split(f, ",") {
			switch {
			case p == "":
			case p == "*":
				return nil, fmt.Errorf("* is not allowed (any page could then write without the key)")
			case !ValidOriginPattern(p):
				return nil, fmt.Errorf("pattern %d is not valid (host, *.host, or scheme://host)", len(out)+1)
			default:
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileBytes)
	}
	return b, nil
}

// eachLine calls f with each line that is neither blank nor a comment,
// trimmed, and its 1-based number.
func eachLine(b []byte, name string, f func(n int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxFileBytes)
	n, entries := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if entries++; entries > maxFileSecret {
			return fmt.Errorf("%s:%d: more than %d entries", name, n, maxFileSecret)
		}
		if err := f(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return nil
}

// CheckSecret says what is wrong with a token or key given outside a
// secrets file (a flag, a file of its own); nil when nothing. The error
// does not quote it.
func CheckSecret(s string) error {
	if msg := checkSecret(s); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// checkSecret says what is wrong with a token or key ("" when nothing),
// without quoting it.
func checkSecret(s string) string {
	if len(s) < MinSecret || len(s) > maxSecret {
		return "must be " + strconv.Itoa(MinSecret) + " to " + strconv.Itoa(maxSecret) + " bytes"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return "may hold only printable ASCII without spaces"
		}
	}
	return ""
}

// IsSite reports whether s is a site id, by the rule ingest applies
// (event.IsName: [a-z0-9_.-]{1,64}).
func IsSite(s string) bool { return event.IsName(s) }
