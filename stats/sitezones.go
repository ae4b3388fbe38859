package stats

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SiteZones are the time zones of sites (pulse serve --site-timezones): a
// query of a site whose body names no timezone is answered in the site's,
// as Plausible answers in the site's zone; other sites' in UTC.
type SiteZones map[string]*time.Location

// ParseSiteZones reads "site=Zone,site=Zone" (IANA names, checked as the
// body's timezone is: no Local, no file paths).
func ParseSiteZones(s string) (SiteZones, error) {
	z := SiteZones{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		site, name, ok := strings.Cut(part, "=")
		if !ok || site == "" {
			return nil, fmt.Errorf("site time zone %q: want site=Zone", part)
		}
		b, _ := json.Marshal(name)
		loc, err := parseLocation(b)
		if err != nil {
			return nil, fmt.Errorf("site time zone of %s: %s", site, err.Msg)
		}
		z[site] = loc
	}
	return z, nil
}

// Body is body with its site's zone as "timezone" when it names none and
// the site has one; otherwise body itself (also when it is not a JSON
// object: Parse then says what is wrong with it).
func (z SiteZones) Body(body []byte) []byte {
	if len(z) == 0 {
		return body
	}
	var f map[string]json.RawMessage
	if json.Unmarshal(body, &f) != nil {
		return body
	}
	if _, ok := f["timezone"]; ok {
		return body
	}
	var site string
	if json.Unmarshal(f["site_id"], &site) != nil || z[site] == nil {
		return body
	}
	f["timezone"], _ = json.Marshal(z[site].String())
	out, err := json.Marshal(f)
	if err != nil {
		return body
	}
	return out
}
