// Package push streams live aggregate deltas to dashboards over WebSockets:
// one Hub per node serves GET /v1/ws, shares one computation per distinct
// subscription and keeps a bounded, merging send queue per connection.
//
// # Protocol
//
// Text messages of JSON. The client sends
//
//	{"op":"auth","token":"T"}   (only when no ?token= was given; must be first)
//	{"op":"subscribe","id":"s1","site":"demo","metric":"pageviews","step":"10s",
//	 "window":"15m","group_by":["path"],"since":42}
//	{"op":"unsubscribe","id":"s1"}
//	{"op":"subscribe","id":"q1","query":{...a POST /v1/stats body...},"since":42}
//
// The last is a live query (Config.Live, livequery.Manager): it is
// answered {"op":"snapshot","id":"q1","seq":N,"results":[..],"meta":{..},"query":{..}}
// and then {"op":"delta","id":"q1","from":F,"seq":S,"results":[rows that
// changed or are new],"removed":[[labels],..],"meta":{..} when it changed};
// a query the Stats API refuses is bad_query with "part" naming where
// (docs/api.md, "Live queries"). The rest of this comment is about the
// site/metric form, whose server messages are
//
//	{"op":"snapshot","id":"s1","seq":N,"series":[...],"reset":true}
//	{"op":"delta","id":"s1","from":F,"seq":S,"points":[{"labels":{..},"t":ts,"add":3,"value":57}]}
//	{"op":"error","id":"s1","code":"bad_query","message":"..."}
//
// series has the shape of /v1/query's series, over the last window. reset is
// present (true) only when a resume could not be honoured or the server had
// to resynchronise. Error codes: bad_message (undecodable message; the
// connection stays open), bad_query (unknown metric, step or dimension, a
// window past the step's retention), limit (Config.MaxSubsPerConn),
// duplicate_id, unknown_id, forbidden (the connection's read token does
// not grant the site, when Config.Tokens is a SiteTokenChecker),
// unavailable (the store or log failed; retry).
// An unsubscribe is not answered.
//
// # Sequence numbers
//
// As docs/api.md says (the data flow is in docs/architecture.md), a
// subscription's seq is the counter n of the per-(site, metric) delta log
// that the aggregate store writes atomically with every applied batch; the
// hub reads that log, its snapshots and its live entries through a Source
// (redisagg.Source over Redis, MemorySource in memory). A snapshot carries
// the n it was read at. A delta covers the log entries from..seq (both inclusive)
// restricted to the subscription's step and group_by; entries are merged per
// flush tick (and further for slow clients), so one delta may span several
// entries. A client has missed nothing iff every delta's from equals the
// previous message's seq + 1, the snapshot's seq counting as the first. An
// unsubscribe followed by a subscribe, or a reset, starts a new chain.
//
// Resume: a subscribe with "since":S replays the entries S+1..now as one
// delta when the log still holds S+1 (sending nothing when nothing is new);
// otherwise the answer is a snapshot with "reset":true. The hub never leaves a
// silent gap: when the live notices (Redis pub/sub) skip an n it catches up
// from the log (Source.Range), and when that is impossible every subscriber
// of the key gets a reset snapshot. Every Config.CheckEvery it also compares each key with the
// head of its log, so a message lost in a quiet period, or a reconnect of the
// pub/sub connection, is caught up too; a log whose head went back (Redis
// lost its data) resets every subscriber of the key.
//
// Points are forwarded whatever their bucket time: late data corrects
// buckets outside or inside the window; the client drops what it does not
// show. A group_by subscription receives every value of the dimension, not
// only the snapshot's top ones (the store's default limit, 10): a delta for
// a value the snapshot left out carries a value the client has no base for.
//
// # Slow clients
//
// Each connection has a queue bounded by Config.SendQueue points, drained
// by one writer goroutine that runs while the queue holds something. When
// it is full, a point for a (subscription, step, t, labels) already queued
// is merged into it (add summed, value the latest, the seq range
// extended); a point for a new key marks the
// connection stalled and drops that subscription's queued points in favour of
// a reset snapshot sent once the client has read its queue. A connection that
// stays stalled and unread for Config.StallClose is closed with 4008 (the
// close frame is best effort: a client whose socket is full sees the TCP
// connection end). The hub never blocks on a connection.
//
// # Close codes
//
//	1000 normal closure
//	1001 going away: the hub is shutting down
//	1008 policy violation: bad or missing token after the upgrade, a
//	     non-auth message before auth, no auth message within
//	     Config.AuthTimeout (2s), or
//	     messages faster than Config.MessageRate ("too many messages")
//	1009 message too big (over Config.MaxMessageBytes)
//	4000 idle timeout: no pong within Config.IdleTimeout
//	4008 slow consumer: queue full and unread for Config.StallClose
//
// Before the upgrade, a wrong ?token= gets HTTP 401 and a refused Origin
// 403; an upgrade without a token past Config.MaxUnauthPerAddr (4 per
// address) or Config.MaxUnauth (256 in all) connections still waiting for
// their auth message gets 429 with Retry-After.
//
// A Hub is safe for concurrent use.
package push
