package ingest

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkPlausibleEvent posts /api/event bodies through the gin handler
// with a publisher that returns at once: a tracker's pageview, a body
// fanned out to 10 sites, and the costliest bodies that are refused: 64
// KiB (the bound) of props keys, and 64 KiB of one unknown field.
func BenchmarkPlausibleEvent(b *testing.B) {
	var keys []string
	for i := 0; len(strings.Join(keys, ",")) < 64<<10-200; i++ {
		keys = append(keys, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	cases := []struct {
		name   string
		body   string
		status int
	}{
		{"pageview", `{"n":"pageview","u":"https://example.com/pricing?utm_source=news","d":"demo","r":"https://news.example/item?id=42","p":{"plan":"pro","price":49},"v":36}`, 202},
		{"sites=10", `{"n":"Signup","u":"https://example.com/","d":"s0,s1,s2,s3,s4,s5,s6,s7,s8,s9","p":{"plan":"pro"}}`, 202},
		{"hostile 64KiB props", `{"n":"pageview","u":"https://example.com/","d":"demo","p":{` + strings.Join(keys, ",") + `}}`, 400},
		{"hostile 64KiB nesting", `{"n":"pageview","u":"https://example.com/","d":"demo","x":` + strings.Repeat("[", 32<<10-100) + `}`, 400},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			benchPost(b, "/api/event", []byte(tc.body), tc.status)
		})
	}
}
