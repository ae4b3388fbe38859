// Live subscriptions over the push WebSocket (DESIGN.md, "Live push"), with
// no DOM and no chart code so node's test runner can exercise it.
//
// Protocol, as the dashboard speaks it:
//   -> {"op":"subscribe","id","site","metric","step","window","group_by"?,"since"?}
//   <- {"op":"snapshot","id","seq","reset"?,"series":[{"labels","points":[[t,v]]}]}
//   <- {"op":"delta","id","from","seq","points":[{"labels","t","add","value"}]}
//   <- {"op":"error","id","code","message"}
// A delta's value is the bucket's new total, so it is set, never added; that
// makes applying a delta twice harmless. There is no gap iff from == seq+1.
//
// Live queries (a POST /v1/stats body, docs/api.md "Live queries"):
//   -> {"op":"subscribe","id","query":{...},"since"?}
//   <- {"op":"snapshot","id","seq","reset"?,"results":[{dimensions,metrics}],"meta","query"}
//   <- {"op":"delta","id","from","seq","results":[changed rows],"removed":[[dims]],"meta"?,"query"?}
// QuerySub folds them: rows upserted by their dimensions, removed ones
// deleted, so once traffic stops the rows are POST /v1/stats's answer.

/** Window choices of the picker and the step each one uses. */
export const WINDOWS = { "5m": "10s", "15m": "10s", "1h": "1m", "24h": "1h" };

const UNITS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** durationMs("15m") = 900000; NaN for anything else. */
export function durationMs(s) {
  const m = /^(\d+)([smhd])$/.exec(s);
  return m ? Number(m[1]) * UNITS[m[2]] : NaN;
}

/** labelKey is a canonical key of a labels object (key order ignored). */
export function labelKey(labels) {
  const l = labels || {};
  return JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));
}

/** How long a gap resync may stay unanswered before another is sent. */
const RESYNC_MS = 5000;

/**
 * Sub is the client state of one subscription: the last applied seq and the
 * bucket values by series. Not safe for concurrent use (browsers have none).
 */
/**
 * unapplied is why sub (a Sub or a QuerySub) does not apply the delta msg
 * at now: "stale" (old, or before any snapshot), "gap" (resubscribe with
 * since=seq now) or "waiting" (a gap while a resync is under way); null
 * when it applies.
 */
function unapplied(sub, msg, now) {
  if (sub.seq === null) return "stale";
  const from = msg.from ?? msg.seq;
  if (msg.seq <= sub.seq) return "stale";
  if (from > sub.seq + 1) {
    if (now - sub.resyncAt < RESYNC_MS) return "waiting";
    sub.resyncAt = now;
    return "gap";
  }
  return null;
}

export class Sub {
  constructor(id, req) {
    this.id = id;
    this.req = req; // site, metric, step, window, group_by?
    this.seq = null; // last applied seq; null before the first snapshot
    this.series = new Map(); // labelKey -> {labels, points: Map<t, value>}
    this.resumed = false; // the last subscribe carried since
    this.resyncAt = -Infinity; // when a gap resubscribe was last sent
    this.ready = false; // a snapshot has been applied
    this.error = null; // the last error message for this id
  }

  /** The subscribe message; resumes from the last applied seq if any. */
  subscribeMsg() {
    const m = { op: "subscribe", id: this.id, ...this.req };
    this.resumed = this.seq !== null;
    if (this.resumed) m.since = this.seq;
    return m;
  }

  onSnapshot(msg) {
    // A snapshot replaces the state unless it answers a resume without
    // reset; then its values are as new as ours and setting them is safe.
    if (msg.reset || !this.resumed || this.seq === null) this.series = new Map();
    for (const s of msg.series || []) {
      for (const [t, v] of s.points || []) this.set(s.labels, t, v);
    }
    this.seq = msg.seq;
    this.ready = true;
    this.error = null;
    this.resyncAt = -Infinity;
  }

  /**
   * onDelta applies a delta and says what happened: "applied", "stale" (old
   * or before any snapshot: ignored), "gap" (resubscribe with since=seq now)
   * or "waiting" (a gap while a resync is already under way).
   */
  onDelta(msg, now) {
    const not = unapplied(this, msg, now);
    if (not) return not;
    // from <= seq+1 < msg.seq+1: contiguous, or overlapping a merged delta
    // whose values are at least as new as ours.
    for (const p of msg.points || []) this.set(p.labels, p.t, p.value);
    this.seq = msg.seq;
    this.resyncAt = -Infinity;
    return "applied";
  }

  set(labels, t, v) {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels: labels || {}, points: new Map() }));
    s.points.set(t, v);
  }

  /** prune drops buckets before minT, so memory stays bounded by the window. */
  prune(minT) {
    for (const [k, s] of this.series) {
      for (const t of s.points.keys()) if (t < minT) s.points.delete(t);
      if (s.points.size === 0) this.series.delete(k);
    }
  }
}

/** rowKey is the canonical key of a row's dimension values. */
export function rowKey(dims) {
  return JSON.stringify(dims || []);
}

/**
 * QuerySub is the client state of one live query: the folded rows, the
 * last meta and resolved query, and the seq chain (as Sub's). changedAt is
 * when rows last changed, so a view can tell traffic from quiet.
 */
export class QuerySub {
  constructor(id, query) {
    this.id = id;
    this.query = query; // the Stats API body
    this.seq = null;
    this.rows = new Map(); // rowKey(dimensions) -> {dimensions, metrics}
    this.meta = {};
    this.resolved = null; // the query as the server resolved it
    this.resumed = false;
    this.resyncAt = -Infinity;
    this.ready = false;
    this.error = null;
    this.changedAt = null;
  }

  subscribeMsg() {
    const m = { op: "subscribe", id: this.id, query: this.query };
    this.resumed = this.seq !== null;
    if (this.resumed) m.since = this.seq;
    return m;
  }

  /** onSnapshot replaces (or, on a resume, refreshes) the rows; a snapshot is no new traffic, so changedAt stays. */
  onSnapshot(msg) {
    if (msg.reset || !this.resumed || this.seq === null) this.rows = new Map();
    for (const r of msg.results || []) this.rows.set(rowKey(r.dimensions), r);
    if (msg.meta) this.meta = msg.meta;
    if (msg.query) this.resolved = msg.query;
    this.seq = msg.seq;
    this.ready = true;
    this.error = null;
    this.resyncAt = -Infinity;
  }

  /** onDelta applies a delta; its results are as Sub.onDelta's. */
  onDelta(msg, now) {
    const not = unapplied(this, msg, now);
    if (not) return not;
    const results = msg.results || [];
    const removed = msg.removed || [];
    for (const r of results) this.rows.set(rowKey(r.dimensions), r);
    for (const d of removed) this.rows.delete(rowKey(d));
    if (msg.meta) this.meta = msg.meta;
    if (msg.query) this.resolved = msg.query;
    if (results.length || removed.length) this.changedAt = now;
    this.seq = msg.seq;
    this.resyncAt = -Infinity;
    return "applied";
  }

  /**
   * sorted returns the rows in the order POST /v1/stats answers them: by
   * the query's order_by, by default the time dimension ascending and the
   * first metric descending; ties by the dimension values.
   */
  sorted() {
    const q = this.query;
    const metrics = q.metrics || [];
    const dims = q.dimensions || [];
    let order = q.order_by || [];
    if (!order.length) {
      order = dims.filter((d) => d === "time" || d.startsWith("time:")).map((d) => [d, "asc"]);
      if (metrics.length) order.push([metrics[0], "desc"]);
    }
    const keyOf = (name) => {
      const m = metrics.indexOf(name);
      if (m >= 0) return (r) => r.metrics[m];
      const d = dims.indexOf(name);
      return (r) => r.dimensions[d];
    };
    const keys = order.map(([name, dir]) => [keyOf(name), dir === "desc" ? -1 : 1]);
    const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    return [...this.rows.values()].sort((a, b) => {
      for (const [k, dir] of keys) {
        const c = cmp(k(a), k(b));
        if (c) return c * dir;
      }
      return cmp(rowKey(a.dimensions), rowKey(b.dimensions));
    });
  }
}

/**
 * grid returns the bucket start times (ms) of a window ending with the
 * bucket that holds now: window/step buckets, oldest first.
 */
export function grid(now, windowMs, stepMs) {
  const end = Math.floor(now / stepMs) * stepMs;
  const n = Math.max(1, Math.round(windowMs / stepMs));
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = end - (n - 1 - i) * stepMs;
  return out;
}

/**
 * totals sums each series over the grid: [{labels, total, values}], values
 * aligned with ts (0 where a bucket has no point), sorted by total desc.
 */
export function totals(sub, ts) {
  const out = [];
  for (const s of sub.series.values()) {
    const values = ts.map((t) => s.points.get(t) ?? 0);
    out.push({ labels: s.labels, values, total: values.reduce((a, b) => a + b, 0) });
  }
  return out.sort((a, b) => b.total - a.total || labelKey(a.labels).localeCompare(labelKey(b.labels)));
}

/**
 * Client keeps one WebSocket open with backoff, resubscribes every
 * subscription on reconnect (resuming with since), and resubscribes on a gap.
 * The read token goes in the first message ({"op":"auth"}), never in the
 * URL, which proxies and access logs record.
 * opts: url, token, WebSocket (constructor), timers ({setTimeout, clearTimeout}),
 * now() ms, random() in [0,1), onState(state), onData(sub), onError(sub|null, msg).
 */
export class Client {
  constructor(opts) {
    this.url = opts.url;
    this.token = opts.token || "";
    this.WS = opts.WebSocket || globalThis.WebSocket;
    this.timers = opts.timers || globalThis;
    this.now = opts.now || Date.now;
    this.random = opts.random || Math.random;
    this.onState = opts.onState || (() => {});
    this.onData = opts.onData || (() => {});
    this.onError = opts.onError || (() => {});
    this.subs = new Map();
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.lastDeltaAt = null; // when the last delta was applied
    this.lastMessageAt = null; // when the server last sent anything
    this.openedAt = null; // when the current connection opened
  }

  /**
   * subscribe adds a subscription, or replaces one with the same id; make
   * builds its state (a Sub by default, a QuerySub for a live query).
   */
  subscribe(id, req, make = (i, r) => new Sub(i, r)) {
    this.unsubscribe(id);
    const sub = make(id, req);
    this.subs.set(id, sub);
    this.send(sub.subscribeMsg());
    return sub;
  }

  /** subscribeQuery subscribes a Stats API body live. */
  subscribeQuery(id, query) {
    return this.subscribe(id, query, (i, q) => new QuerySub(i, q));
  }

  unsubscribe(id) {
    if (this.subs.delete(id)) this.send({ op: "unsubscribe", id });
  }

  start() {
    this.stopped = false;
    if (!this.ws && this.timer === null) this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
    this.setState("closed");
  }

  setState(s) {
    if (s !== this.state) {
      this.state = s;
      this.onState(s);
    }
  }

  send(msg) {
    if (this.ws && this.state === "open") this.ws.send(JSON.stringify(msg));
  }

  connect() {
    this.timer = null;
    this.setState(this.attempt ? "reconnecting" : "connecting");
    const ws = new this.WS(this.url);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.openedAt = this.now();
      this.setState("open");
      if (this.token) this.send({ op: "auth", token: this.token });
      for (const sub of this.subs.values()) this.send(sub.subscribeMsg());
    };
    ws.onmessage = (e) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.attempt = 0; // the server talks: the next drop starts backoff afresh
      this.lastMessageAt = this.now();
      this.handle(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.attempt++;
      this.setState("reconnecting");
      this.timer = this.timers.setTimeout(() => this.connect(), this.backoff());
    };
    ws.onerror = () => {}; // a close event follows
  }

  /** backoff is 0.5s doubling to 30s, with jitter so dashboards spread out. */
  backoff() {
    const base = Math.min(30e3, 500 * 2 ** Math.min(this.attempt - 1, 10));
    return Math.round(base * (0.5 + this.random() / 2));
  }

  handle(msg) {
    const sub = this.subs.get(msg.id);
    if (msg.op === "error") {
      if (sub) sub.error = msg.message || msg.code || "error";
      this.onError(sub || null, msg);
      return;
    }
    if (!sub) return; // a late message of a subscription we dropped
    if (msg.op === "snapshot") {
      sub.onSnapshot(msg);
      this.onData(sub);
    } else if (msg.op === "delta") {
      const now = this.now();
      const r = sub.onDelta(msg, now);
      if (r === "applied") {
        this.lastDeltaAt = now;
        this.onData(sub);
      } else if (r === "gap") {
        this.send(sub.subscribeMsg());
      }
    }
  }
}
