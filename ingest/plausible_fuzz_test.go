package ingest

import (
	"testing"

	"github.com/pulsehq/pulse/event"
)

// FuzzPlausibleBody: any body either is refused with a plausibleError or
// reads into 1 to 10 sites and a valid event name, without panicking.
func FuzzPlausibleBody(f *testing.F) {
	for _, s := range []string{
		`{"n":"pageview","u":"https://demo/","d":"demo,shop","p":{"a":1,"b":"x","c":true,"d":null}}`,
		`{"name":404,"url":"https://www.demo/x#y","h":1,"m":"{\"k\":\"v\"}","$":{"amount":"1.5","currency":"EUR"}}`,
		`{"n":"engagement","u":"https://demo/","d":"demo","sd":"120","e":99}`,
		`{"n":"x","u":"data:x","d":""}`, `[1]`, `{"a":{"b":[[[]]]}}`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pe, err := parsePlausible(body, event.DefaultMaxProps)
		if err != nil {
			if _, ok := err.(*plausibleError); !ok {
				t.Fatalf("error %T %v, want a *plausibleError", err, err)
			}
			return
		}
		if len(pe.sites) < 1 || len(pe.sites) > plausibleMaxSites || !event.IsEventName(pe.name) || pe.url == "" {
			t.Fatalf("accepted %+v", pe)
		}
		for _, s := range pe.sites {
			if !event.IsName(s) {
				t.Fatalf("site %q", s)
			}
		}
	})
}
