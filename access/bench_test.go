package access

import (
	"fmt"
	"testing"
)

// BenchmarkScope: the cost of checking a read token among n tokens (a
// hash and a map lookup: flat in n).
func BenchmarkScope(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			read := make([]ReadToken, n)
			for i := range read {
				read[i] = ReadToken{Token: fmt.Sprintf("token-%06d-abcdefghijklmnop", i), Scope: SitesScope("a")}
			}
			tk, err := New("admin", read)
			if err != nil {
				b.Fatal(err)
			}
			tok := read[n/2].Token
			for b.Loop() {
				if _, ok := tk.Scope(tok); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}
