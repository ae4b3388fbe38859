package access

import (
	"strings"
	"testing"
)

// FuzzParseReadTokens: no panic; an error names the file and shows no
// text that stood on either side of a line's "=" (the token, or on a
// swapped line a site list holding it); every token parsed is a valid
// secret, no site id of the file, and grants exactly its scope.
func FuzzParseReadTokens(f *testing.F) {
	f.Add([]byte("# tokens\nall-token-0123456789=*\nsite-token-0123456789=a,b\n"))
	f.Add([]byte("t==a\n\n"))
	f.Add([]byte("a=secret-token-0123456789\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := ParseReadTokens(b, "f", []string{"known-site-0123456789"})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error %q does not name the file", err)
			}
			assertNoSecret(t, err, b, strings.LastIndexByte, ",")
			return
		}
		tk, err := New("", toks)
		if err != nil {
			t.Fatalf("New after a clean parse: %v", err)
		}
		for _, rt := range toks {
			if checkSecret(rt.Token) != "" {
				t.Fatalf("bad token %q accepted", rt.Token)
			}
			if rt.Token == "known-site-0123456789" {
				t.Fatalf("token equal to a known site accepted")
			}
			for _, o := range toks {
				if o.Scope.Allows(rt.Token) && !o.Scope.All() {
					t.Fatalf("token %q equal to a site of the file accepted", rt.Token)
				}
			}
			s, ok := tk.Scope(rt.Token)
			if !ok || s.String() != rt.Scope.String() {
				t.Fatalf("token scope %v %v, want %v", s, ok, rt.Scope)
			}
		}
	})
}

// FuzzParseWriteKeys: no panic; an error names the file and shows no text
// that stood on either side of a line's "=" (the key, or on a swapped line
// the site's place holding it).
func FuzzParseWriteKeys(f *testing.F) {
	f.Add([]byte("shop=0123456789abcdef\n# c\nblog = k=0123456789abcdef\n"))
	f.Add([]byte("shop\n"))
	f.Add([]byte("0123456789abcdef=shop\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wk, err := ParseWriteKeys(b, "f", []string{"known-site-0123456789"})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error %q does not name the file", err)
			}
			assertNoSecret(t, err, b, strings.IndexByte, " ")
			return
		}
		if wk.Len() < 0 {
			t.Fatal("negative length")
		}
	})
}

// assertNoSecret fails if err shows a piece of 8 bytes or more, without
// spaces, of a line of b on either side of its "=" (found by cut), the
// right side split at sep. Shorter pieces would match the message's own
// words.
func assertNoSecret(t *testing.T, err error, b []byte, cut func(string, byte) int, sep string) {
	t.Helper()
	msg := strings.TrimPrefix(err.Error(), "f:")
	for _, line := range strings.Split(string(b), "\n") {
		i := cut(line, '=')
		if i < 0 {
			continue
		}
		pieces := append(strings.Fields(line[:i]), strings.Fields(strings.ReplaceAll(line[i+1:], sep, " "))...)
		for _, p := range pieces {
			for _, q := range strings.Split(p, ",") {
				if len(q) >= 8 && strings.Contains(msg, q) {
					t.Fatalf("error %q shows %q of line %q", err, q, line)
				}
			}
		}
	}
}
