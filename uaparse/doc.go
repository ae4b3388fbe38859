// Package uaparse reads a User-Agent header into browser, operating system
// (each with a version), device class and bot flag, in the names Plausible
// shows, for the visit:browser and visit:os dimensions.
//
// Browser and OS come from github.com/medama-io/go-useragent (a token trie
// made for analytics, maintained by the Medama project, no allocation per
// parse), renamed to Plausible's names, with in-app web views named
// "Mobile App" as Plausible does. medama gives no OS version; osVersion
// reads it from the token that named the OS.
//
// Device class and bot flag stay with Pulse's own classifier in event (read
// through event.Enrich): on the fixture it matched the reference device on
// every browser string where medama called 5 of 16 tablets mobile, and it
// flagged four times as many crawlers; medama's bot verdict and a URL in
// the User-Agent only add crawlers to it. HTTP libraries keep the "server"
// class, not bot. docs/useragents.md has the measured agreement of each
// parser with ua-parser-js on testdata/agents.jsonl, and how to rebuild it.
//
// Parse is deterministic: it reads nothing but its argument, so a replay
// classifies an event as ingest did (for the same medama version).
package uaparse
