package access

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/pulsehq/pulse/event"
)

// Limits of the secrets files.
const (
	maxSecret     = 512     // bytes in a token or key
	minWriteKey   = 16      // bytes in a write key: it guards writes, so no short ones
	maxFileBytes  = 1 << 20 // a secrets file is small; a larger one is a mistake
	maxFileSecret = 100_000 // entries
)

// LoadReadTokens reads a read-tokens file (see ParseReadTokens).
func LoadReadTokens(path string) ([]ReadToken, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	return ParseReadTokens(b, path)
}

// ParseReadTokens parses a read-tokens file named name (for messages): one
// TOKEN=SITES per line, SITES being "*" (every site) or a comma-separated
// list of site ids; blank lines and lines starting with # are skipped. The
// line is split at its last "=", since a site id holds none and a token
// (base64 padding) may. A token is 1 to 512 printable ASCII bytes without
// spaces. Errors name the file and line, never the token.
func ParseReadTokens(b []byte, name string) ([]ReadToken, error) {
	var out []ReadToken
	seen := map[hash]int{}
	err := eachLine(b, name, func(n int, line string) error {
		i := strings.LastIndexByte(line, '=')
		if i < 0 {
			return fmt.Errorf("%s:%d: want TOKEN=SITES (SITES: * or site1,site2)", name, n)
		}
		tok, sites := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		if msg := checkSecret(tok, 1); msg != "" {
			return fmt.Errorf("%s:%d: token %s", name, n, msg)
		}
		h := hashOf(tok)
		if first, dup := seen[h]; dup {
			return fmt.Errorf("%s:%d: token repeated (first on line %d)", name, n, first)
		}
		seen[h] = n
		scope, err := parseScope(sites)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, ReadToken{Token: tok, Scope: scope})
		return nil
	})
	return out, err
}

func parseScope(s string) (Scope, error) {
	if s == "*" {
		return AllSites(), nil
	}
	if s == "" {
		return Scope{}, fmt.Errorf("no sites after = (want * or site1,site2)")
	}
	var sites []string
	for _, site := range strings.Split(s, ",") {
		site = strings.TrimSpace(site)
		if !IsSite(site) {
			return Scope{}, fmt.Errorf("site %.70q must match [a-z0-9_.-]{1,64} (or the whole list be *)", site)
		}
		sites = append(sites, site)
	}
	return SitesScope(sites...), nil
}

// LoadWriteKeys reads a write-keys file (see ParseWriteKeys).
func LoadWriteKeys(path string) (*WriteKeys, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	return ParseWriteKeys(b, path)
}

// ParseWriteKeys parses a write-keys file named name (for messages): one
// "SITE=KEY ORIGINS" per line, split at the first "=", ORIGINS optional;
// blank lines and lines starting with # are skipped. A key is 16 to 512
// printable ASCII bytes without spaces; a site has one key. ORIGINS are
// the pages that may send the site's events without the key: origin
// patterns as --ingest-origins takes them (see NewOrigins), separated by
// commas or spaces, "*" excluded. Errors name the file and line, never the
// key.
func ParseWriteKeys(b []byte, name string) (*WriteKeys, error) {
	w := &WriteKeys{keys: map[string]hash{}, origins: map[string]Origins{}}
	lines := map[string]int{}
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
			return fmt.Errorf("%s:%d: site %.70q must match [a-z0-9_.-]{1,64}", name, n, site)
		}
		if first, dup := lines[site]; dup {
			return fmt.Errorf("%s:%d: site %s has a key already (line %d)", name, n, site, first)
		}
		if msg := checkSecret(key, minWriteKey); msg != "" {
			return fmt.Errorf("%s:%d: key of site %s %s", name, n, site, msg)
		}
		patterns, err := pagePatterns(fields[1:])
		if err != nil {
			return fmt.Errorf("%s:%d: origins of site %s: %w", name, n, site, err)
		}
		lines[site] = n
		w.keys[site] = hashOf(key)
		if len(patterns) > 0 {
			w.origins[site] = NewOrigins(patterns)
		}
		return nil
	})
	if err != nil {
		return nil, err
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

// checkSecret says what is wrong with a token or key ("" when nothing),
// without quoting it.
func checkSecret(s string, minLen int) string {
	if len(s) < minLen || len(s) > maxSecret {
		return "must be " + strconv.Itoa(minLen) + " to " + strconv.Itoa(maxSecret) + " bytes"
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
