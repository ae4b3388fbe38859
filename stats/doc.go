// Package stats is the Stats API v2 query (the shape of Plausible's Stats
// API v2; the contract is "Contract v2" of the design): a request body
// parsed and checked into a Query, the filter tree and its evaluation on
// one row, the date range resolved in the query's time zone, and the time
// buckets.
//
// It knows no store and no HTTP: Parse either returns a Query every later
// step may trust (names known, bounds kept, Plausible's combination rules
// met, regular expressions compiled, the range resolved to instants) or an
// *Error naming the part of the body that is wrong, which the HTTP layer
// answers as 400. Execute answers a Query from rows, an Execution does so
// as rows keep coming (live queries), and ExecuteSegments from the rows of
// hours kept in columns (Segment), with the same answers. Those answer
// what each event answers alone; ExecuteVisits also what needs visits
// (sessions), which it derives from the hours' rows for each query: no
// session state is kept anywhere, so visits are as exact as the rows
// (docs/queries.md "Visits").
//
// Invariants a caller may rely on:
//   - Range is half-open, [From, To), in absolute time; whole-day forms
//     start and end at the first instant of a local day (its midnight, or
//     the end of the gap where clocks skip midnight), counted on the wall
//     clock and never by adding 24 hours, so a day across a
//     daylight-saving change lasts 23 or 25 hours. Ranges reaching into the future are kept whole (To may be after
//     now, as Plausible answers the whole day); the executor clips to now.
//   - "all" leaves From zero with AllTime set: the lower bound (the site's
//     first data, or retention) is the executor's, given by WithStart.
//   - A time bucket is a label of the local wall clock: every instant whose
//     local time truncates to the same minute, hour, day, Monday or first
//     of the month shares it, so on the day clocks go back the hour "02:00"
//     covers two real hours and on the day they go forward it does not
//     exist. Week labels are clamped to the range's first day, as
//     Plausible's weekstart_not_before does.
//
// Query values are immutable after Parse and safe for concurrent use.
package stats
