package refsource

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pulsehq/pulse/event"
)

func newList(t testing.TB) *List {
	t.Helper()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const page = "https://example.com/blog/post"

func TestSource(t *testing.T) {
	l := newList(t)
	for _, tc := range []struct {
		name, referrer, page, want string
	}{
		// Known referrers, as browsers send them.
		{"google.com", "https://google.com/", page, "Google"},
		{"www.google.com search", "https://www.google.com/search?q=pulse", page, "Google"},
		{"google.co.uk", "https://www.google.co.uk/", page, "Google"},
		{"google shopping path", "https://www.google.com/products?q=x", page, "Google Product Search"},
		{"hacker news", "https://news.ycombinator.com/item?id=1", page, "Hacker News"},
		{"t.co", "https://t.co/AbC123", page, "Twitter"},
		{"x.com", "https://x.com/someone/status/1", page, "Twitter"},
		{"l.facebook.com", "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com", page, "Facebook"},
		{"m.facebook.com", "https://m.facebook.com/", page, "Facebook"},
		{"duckduckgo", "https://duckduckgo.com/", page, "DuckDuckGo"},
		{"bing", "https://www.bing.com/search?q=pulse", page, "Bing"},
		{"bing images path", "https://www.bing.com/images/search?q=pulse", page, "Bing Images"},
		{"ecosia by parent", "https://www.ecosia.org/search?q=x", page, "Ecosia"},
		{"reddit old", "https://old.reddit.com/r/golang/", page, "Reddit"},
		{"youtube mobile by parent", "https://m.youtube.com/watch?v=1", page, "Youtube"},
		{"upper case", "HTTPS://WWW.Google.COM/search", page, "Google"},
		{"trailing dot", "https://google.com./", page, "Google"},
		{"with port and user", "https://u:p@news.ycombinator.com:443/", page, "Hacker News"},
		{"spaces around", "  https://duckduckgo.com/  ", page, "DuckDuckGo"},
		// Android apps.
		{"gmail app", "android-app://com.google.android.gm", page, "Gmail"},
		{"gmail app slash", "android-app://com.google.android.gm/", page, "Gmail"},
		{"google app", "android-app://com.google.android.googlequicksearchbox/https/www.google.com", page, "Google"},
		{"unknown app", "android-app://org.example.reader", page, "android-app://org.example.reader"},
		{"unknown app is exact", "android-app://com.google.android.gm.lite", page, "android-app://com.google.android.gm.lite"},
		// Pulse's additions.
		{"wikipedia de", "https://de.wikipedia.org/wiki/Go", page, "Wikipedia"},
		{"wikipedia en mobile", "https://en.m.wikipedia.org/wiki/Go", page, "Wikipedia"},
		{"chatgpt", "https://chatgpt.com/", page, "ChatGPT"},
		// Unknown referrers: the host without www.
		{"unknown", "https://www.markosaric.com/post/", page, "markosaric.com"},
		{"unknown subdomain", "https://blog.other.org/a", page, "blog.other.org"},
		{"ipv4", "http://192.0.2.7:8080/x", page, "192.0.2.7"},
		{"ipv6", "http://[2001:db8::1]:8080/x", page, "[2001:db8::1]"},
		{"own subdomain is another site", "https://blog.example.com/", page, "blog.example.com"},
		// Self-referrals, localhost, none.
		{"self", "https://example.com/", page, Direct},
		{"self www referrer", "https://www.example.com/a", page, Direct},
		{"self www page", "https://example.com/a", "https://www.example.com/b", Direct},
		{"self other scheme and port", "http://EXAMPLE.com:8080/", page, Direct},
		{"self google", "https://www.google.com/", "https://google.com/about", Direct},
		{"localhost", "http://localhost:3000/", page, Direct},
		{"empty", "", page, Direct},
		// Garbage.
		{"no scheme", "google.com", page, Direct},
		{"scheme-relative", "//google.com/", page, Direct},
		{"ftp", "ftp://google.com/", page, Direct},
		{"javascript", "javascript:alert(1)", page, Direct},
		{"no host", "https://", page, Direct},
		{"no host path", "https:///path", page, Direct},
		{"space in host", "https://exa mple.com/", page, Direct},
		{"markup in host", "https://<script>/", page, Direct},
		{"unicode host", "https://bücher.de/", page, Direct},
		{"double dot", "https://a..b/", page, Direct},
		{"text", "not a url at all", page, Direct},
		{"bad ipv6", "http://[fe80::1%25en0]/", page, Direct},
		// Tagged sources win over the referrer (Plausible's order).
		{"utm_source known", "", page + "?utm_source=google", "Google"},
		{"utm_source any case", "", page + "?utm_source=GOOGLE", "Google"},
		{"utm_source alias", "", page + "?utm_source=ig", "Instagram"},
		{"utm_source unknown kept", "", page + "?utm_source=Newsletter", "Newsletter"},
		{"utm_source over referrer", "https://t.co/x", page + "?utm_source=fb", "Facebook"},
		{"utm_source on self-referral", "https://example.com/", page + "?utm_source=hn", "Hacker News"},
		{"source param", "", page + "?source=duckduckgo", "DuckDuckGo"},
		{"ref param", "", page + "?ref=producthunt", "producthunt"},
		{"utm_source over source over ref", "", page + "?ref=a&source=b&utm_source=c", "c"},
		{"source over ref", "", page + "?ref=a&source=b", "b"},
		{"last value", "", page + "?utm_source=a&utm_source=b", "b"},
		{"escaped", "", page + "?utm_source=Hacker%20News", "Hacker News"},
		{"plus is space", "", page + "?utm_source=my+list", "my list"},
		{"blank tag is none", "https://t.co/x", page + "?utm_source=&ref=%20", "Twitter"},
		{"bad escape skipped", "", page + "?utm_source=%zz&ref=other", "other"},
		{"query in fragment is no query", "", "https://example.com/#/p?utm_source=google", Direct},
		{"fragment after query", "", page + "?utm_source=google#top", "Google"},
		{"non-ASCII tag kept", "", page + "?utm_source=%C3%A9t%C3%A9", "été"},
		{"invalid UTF-8 replaced", "", page + "?utm_source=a%FFb", "a\uFFFDb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Source(tc.referrer, tc.page); got != tc.want {
				t.Errorf("Source(%q, %q) = %q, want %q", tc.referrer, tc.page, got, tc.want)
			}
		})
	}
}

func TestParseUTM(t *testing.T) {
	for _, tc := range []struct {
		name, page string
		want       UTM
	}{
		{"none", page, UTM{}},
		{"empty", "", UTM{}},
		{"all five", page + "?utm_source=news&utm_medium=email&utm_campaign=launch&utm_content=top&utm_term=go+analytics",
			UTM{Source: "news", Medium: "email", Campaign: "launch", Content: "top", Term: "go analytics"}},
		{"others ignored", page + "?a=1&utm_campaign=x&b", UTM{Campaign: "x"}},
		{"not mapped", page + "?utm_source=google", UTM{Source: "google"}},
		{"escaped", page + "?utm_campaign=%E2%9C%93%20done", UTM{Campaign: "✓ done"}},
		{"escaped key", page + "?utm%5Fmedium=cpc", UTM{Medium: "cpc"}},
		{"last wins", page + "?utm_medium=a&utm_medium=b", UTM{Medium: "b"}},
		{"bad escape skipped", page + "?utm_medium=%G0&utm_term=t", UTM{Term: "t"}},
		{"fragment cut", page + "?utm_term=a#utm_term=b", UTM{Term: "a"}},
		{"query in fragment", "https://example.com/#/x?utm_term=a", UTM{}},
		{"case-sensitive keys", page + "?UTM_SOURCE=a", UTM{}},
		{"no value", page + "?utm_source", UTM{}},
		{"semicolon is not a separator", page + "?utm_source=a;utm_medium=b", UTM{Source: "a;utm_medium=b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseUTM(tc.page); got != tc.want {
				t.Errorf("ParseUTM(%q) = %+v, want %+v", tc.page, got, tc.want)
			}
		})
	}
}

// TestListData checks the embedded list for what New relies on: hosts that
// stay distinct in lower case (else which wins would depend on map order),
// and Pulse's aliases naming only names that exist.
func TestListData(t *testing.T) {
	var raw map[string]struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(referrersJSON), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) < 2000 {
		t.Errorf("referrers.json has %d entries, want the full list (2,381 in 0.1.27)", len(raw))
	}
	seen := map[string]string{}
	for key := range raw {
		low := asciiLower(key)
		if other, ok := seen[low]; ok {
			t.Errorf("referrers.json: %q and %q are one host", key, other)
		}
		seen[low] = key
	}
	l := newList(t)
	for alias, name := range aliases() {
		if l.names[asciiLower(name)] != name {
			t.Errorf("alias %q names %q, which is no source name", alias, name)
		}
	}
	for key := range l.names {
		if len(key) > maxNameKey {
			t.Errorf("name %q is longer than maxNameKey %d", key, maxNameKey)
		}
	}
}

// TestDeterministic builds the list several times (maps iterate in a new
// order each time) and asks each the same questions.
func TestDeterministic(t *testing.T) {
	inputs := [][2]string{
		{"https://www.google.com/imgres?x", page},
		{"https://orange.fr/webmail/", page},
		{"", page + "?utm_source=qip"},
		{"", page + "?utm_source=ukr.net"},
	}
	first := newList(t)
	for range 5 {
		l := newList(t)
		for _, in := range inputs {
			if a, b := first.Source(in[0], in[1]), l.Source(in[0], in[1]); a != b {
				t.Errorf("Source(%q, %q) = %q then %q", in[0], in[1], a, b)
			}
		}
	}
}

func FuzzSource(f *testing.F) {
	for _, s := range []string{
		"", "https://www.google.com/search?q=x", "android-app://com.google.android.gm",
		"http://[::1]:80/", "https://u@h:1/p?q#f", "HTTPS://WWW.EXAMPLE.COM./",
		"https://example.com/?utm_source=%E2%9C%93&ref=a+b", "javascript:x", "https://a..b/",
	} {
		f.Add(s, page)
		f.Add(s, s)
	}
	l := newList(f)
	f.Fuzz(func(t *testing.T, referrer, pageURL string) {
		got := l.Source(referrer, pageURL)
		if again := l.Source(referrer, pageURL); again != got {
			t.Fatalf("Source(%q, %q) = %q then %q", referrer, pageURL, got, again)
		}
		utm := ParseUTM(pageURL)
		if utf8.ValidString(referrer) && utf8.ValidString(pageURL) {
			for _, v := range []string{got, utm.Source, utm.Medium, utm.Campaign, utm.Content, utm.Term} {
				if !utf8.ValidString(v) {
					t.Errorf("Source or ParseUTM of %q, %q gives %q: not UTF-8", referrer, pageURL, v)
				}
			}
		}
		if !strings.Contains(pageURL, "?") && utm != (UTM{}) {
			t.Errorf("ParseUTM(%q) = %+v without a query", pageURL, utm)
		}
		if taggedSource(pageURL) != "" {
			if got == "" {
				t.Errorf("Source(%q, %q) is empty for a tagged page", referrer, pageURL)
			}
			return
		}
		// Without a tag the source is Direct, a name of the list, or a
		// valid host: never a piece of the raw input.
		host := strings.TrimPrefix(got, "android-app://")
		if got != Direct && !isName(l, got) && !validHost(host) {
			t.Errorf("Source(%q, %q) = %q: not Direct, a name, or a host", referrer, pageURL, got)
		}
		// A referrer on the page's host, or on www. of it, is no source.
		refHost, pgHost := event.URLHost(strings.TrimSpace(referrer)), event.URLHost(pageURL)
		if got != Direct && pgHost != "" && (refHost == pgHost || refHost == "www."+pgHost) {
			t.Errorf("Source(%q, %q) = %q is the page's own site", referrer, pageURL, got)
		}
	})
}

func isName(l *List, s string) bool {
	return l.names[asciiLower(s)] == s
}

var sinkSource string

func BenchmarkSource(b *testing.B) {
	l := newList(b)
	cases := []struct{ name, referrer, page string }{
		{"direct", "", page},
		{"self", "https://example.com/", page},
		{"google", "https://www.google.com/search?q=pulse", page},
		{"subdomain walk", "https://m.youtube.com/watch?v=1", page},
		{"unknown", "https://blog.some-site.net/2026/12/post", page},
		{"android app", "android-app://com.google.android.gm", page},
		{"utm_source", "https://t.co/x", page + "?utm_source=newsletter&utm_medium=email"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkSource = l.Source(c.referrer, c.page)
			}
		})
	}
}

var sinkUTM UTM

func BenchmarkParseUTM(b *testing.B) {
	for _, c := range []struct{ name, page string }{
		{"none", page},
		{"five", page + "?utm_source=news&utm_medium=email&utm_campaign=launch&utm_content=top&utm_term=go"},
		{"escaped", page + "?utm_source=my%20news&utm_term=go+analytics"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkUTM = ParseUTM(c.page)
			}
		})
	}
}

var sinkList *List

// BenchmarkNew is the one-time cost of the list: its B/op is the heap the
// decoding takes, an upper bound of what the List keeps.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkList = newList(b)
	}
}
