package refsource

import (
	"iter"
	"net/url"
	"strings"
)

// UTM is the campaign tags of a page URL, percent-decoded, "" when absent.
type UTM struct {
	Source, Medium, Campaign, Content, Term string
}

// ParseUTM reads utm_source, utm_medium, utm_campaign, utm_content and
// utm_term from the query of pageURL. A parameter given twice takes its
// last value, as Plausible's query decoding does; one that cannot be
// decoded is skipped, as net/url.ParseQuery skips it. The values are kept
// as sent: Source is not mapped to a name (List.Source does that).
func ParseUTM(pageURL string) UTM {
	var u UTM
	for key, value := range params(pageURL) {
		switch key {
		case "utm_source":
			u.Source = value
		case "utm_medium":
			u.Medium = value
		case "utm_campaign":
			u.Campaign = value
		case "utm_content":
			u.Content = value
		case "utm_term":
			u.Term = value
		}
	}
	return u
}

// taggedSource is the source the page URL names: utm_source, else source,
// else ref (Plausible's order), each its last non-blank value, trimmed.
// Unlike Plausible, a blank value is no tag, so "?utm_source=" is not a
// source named "".
func taggedSource(pageURL string) string {
	var utmSource, source, ref string
	for key, value := range params(pageURL) {
		value = strings.TrimSpace(value)
		if value == "" {
			continue
		}
		switch key {
		case "utm_source":
			utmSource = value
		case "source":
			source = value
		case "ref":
			ref = value
		}
	}
	switch {
	case utmSource != "":
		return utmSource
	case source != "":
		return source
	}
	return ref
}

// params yields the key and value of each parameter of the query of
// pageURL that decodes, in order.
func params(pageURL string) iter.Seq2[string, string] {
	return func(yield func(key, value string) bool) {
		for q := rawQuery(pageURL); q != ""; {
			var pair string
			pair, q, _ = strings.Cut(q, "&")
			if key, value, ok := param(pair); ok && !yield(key, value) {
				return
			}
		}
	}
}

// rawQuery is the query of a URL: after the first "?" and before the
// fragment. A "?" inside the fragment (hash routing: /#/page?x=1) is not a
// query, as the URL standard reads it.
func rawQuery(u string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		return ""
	}
	return q
}

// param splits and decodes one "key=value" of a query. It allocates only
// when a part is escaped.
func param(pair string) (key, value string, ok bool) {
	key, value, _ = strings.Cut(pair, "=")
	if key, ok = unescape(key); !ok {
		return "", "", false
	}
	value, ok = unescape(value)
	return key, value, ok
}

func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	d, err := url.QueryUnescape(s)
	if err != nil {
		return "", false
	}
	// A decoded value is stored and shown: bytes that are no UTF-8
	// ("%FF") become U+FFFD, as encoding/json makes them in the body.
	return strings.ToValidUTF8(d, "\uFFFD"), true
}
