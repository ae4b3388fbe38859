// Tests of the dashboard's protocol handling: `npm test` in web/ (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, Sub, grid, totals, durationMs, labelKey, WINDOWS } from "./live.js";

const req = { site: "demo", metric: "pageviews", step: "10s", window: "15m", group_by: ["path"] };
const snap = (seq, points, extra = {}) => ({
  op: "snapshot",
  id: "s1",
  seq,
  series: [{ labels: { path: "/" }, points }],
  ...extra,
});
const delta = (from, seq, points) => ({ op: "delta", id: "s1", from, seq, points });
const value = (sub, path, t) => sub.series.get(labelKey({ path }))?.points.get(t);

test("durations and windows", () => {
  const cases = [["10s", 10e3], ["15m", 900e3], ["1h", 3600e3], ["1d", 86400e3], ["24h", 86400e3], ["5x", NaN], ["", NaN]];
  for (const [s, want] of cases) assert.deepEqual(durationMs(s), want, s);
  assert.deepEqual(WINDOWS, { "5m": "10s", "15m": "10s", "1h": "1m", "24h": "1h" });
});

test("labelKey ignores key order", () => {
  assert.equal(labelKey({ a: "1", b: "2" }), labelKey({ b: "2", a: "1" }));
  assert.notEqual(labelKey({ a: "1" }), labelKey({ a: "2" }));
  assert.equal(labelKey(undefined), labelKey({}));
});

test("subscribe message resumes from the last applied seq", () => {
  const s = new Sub("s1", req);
  assert.deepEqual(s.subscribeMsg(), { op: "subscribe", id: "s1", ...req });
  s.onSnapshot(snap(7, [[1000, 2]]));
  assert.deepEqual(s.subscribeMsg(), { op: "subscribe", id: "s1", ...req, since: 7 });
});

test("delta values are set, not added; gaps and stale deltas", () => {
  const cases = [
    // name, deltas after a snapshot at seq 5 with value 2 at t=1000, want results, want value, want seq
    ["contiguous", [delta(6, 6, [{ labels: { path: "/" }, t: 1000, add: 3, value: 5 }])], ["applied"], 5, 6],
    ["twice the same", [delta(6, 6, [{ labels: { path: "/" }, t: 1000, add: 3, value: 5 }]), delta(6, 6, [{ labels: { path: "/" }, t: 1000, add: 3, value: 5 }])], ["applied", "stale"], 5, 6],
    ["old", [delta(4, 5, [{ labels: { path: "/" }, t: 1000, add: 1, value: 99 }])], ["stale"], 2, 5],
    ["gap", [delta(7, 7, [{ labels: { path: "/" }, t: 1000, add: 1, value: 9 }])], ["gap"], 2, 5],
    ["gap while resyncing", [delta(7, 7, []), delta(8, 8, [])], ["gap", "waiting"], 2, 5],
    ["merged delta overlapping", [delta(6, 6, []), delta(5, 8, [{ labels: { path: "/" }, t: 1000, add: 4, value: 6 }])], ["applied", "applied"], 6, 8],
    ["new series and bucket", [delta(6, 6, [{ labels: { path: "/x" }, t: 2000, add: 1, value: 1 }])], ["applied"], 2, 6],
  ];
  for (const [name, deltas, wantResults, wantValue, wantSeq] of cases) {
    const s = new Sub("s1", req);
    s.onSnapshot(snap(5, [[1000, 2]]));
    const got = deltas.map((d, i) => s.onDelta(d, 1000 + i));
    assert.deepEqual(got, wantResults, name);
    assert.equal(value(s, "/", 1000), wantValue, name);
    assert.equal(s.seq, wantSeq, name);
  }
});

test("a delta before any snapshot is ignored", () => {
  const s = new Sub("s1", req);
  assert.equal(s.onDelta(delta(1, 1, [{ labels: { path: "/" }, t: 1, add: 1, value: 1 }]), 0), "stale");
  assert.equal(s.series.size, 0);
});

test("a stuck resync is retried after a while", () => {
  const s = new Sub("s1", req);
  s.onSnapshot(snap(5, []));
  assert.equal(s.onDelta(delta(7, 7, []), 0), "gap");
  assert.equal(s.onDelta(delta(8, 8, []), 1000), "waiting");
  assert.equal(s.onDelta(delta(9, 9, []), 6000), "gap");
});

test("snapshots: reset replaces, a resume without reset merges, a fresh one replaces", () => {
  const s = new Sub("s1", req);
  s.onSnapshot(snap(5, [[1000, 2], [2000, 3]]));
  s.subscribeMsg(); // resume with since=5
  s.onSnapshot(snap(6, [[2000, 4]]));
  assert.equal(value(s, "/", 1000), 2);
  assert.equal(value(s, "/", 2000), 4);
  s.subscribeMsg();
  s.onSnapshot(snap(1, [[3000, 1]], { reset: true }));
  assert.equal(value(s, "/", 1000), undefined);
  assert.equal(value(s, "/", 3000), 1);
  assert.equal(s.seq, 1);
});

test("grid, totals and prune over the window", () => {
  const ts = grid(125_000, 60e3, 10e3);
  assert.deepEqual(ts, [70e3, 80e3, 90e3, 100e3, 110e3, 120e3]);
  const s = new Sub("s1", req);
  s.onSnapshot({
    op: "snapshot",
    id: "s1",
    seq: 1,
    series: [
      { labels: { path: "/a" }, points: [[60e3, 100], [70e3, 1], [120e3, 2]] },
      { labels: { path: "/b" }, points: [[110e3, 5]] },
    ],
  });
  const got = totals(s, ts);
  assert.deepEqual(got.map((r) => [r.labels.path, r.total]), [["/b", 5], ["/a", 3]]);
  assert.deepEqual(got[1].values, [1, 0, 0, 0, 0, 2]);
  s.prune(ts[0]);
  assert.equal(value(s, "/a", 60e3), undefined);
  assert.equal(value(s, "/a", 70e3), 1);
});

// FakeWS records what the client sends; the test plays the server.
class FakeWS {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = false;
    FakeWS.all.push(this);
  }
  send(s) {
    this.sent.push(JSON.parse(s));
  }
  close() {
    this.closed = true;
  }
  open() {
    this.onopen();
  }
  recv(msg) {
    this.onmessage({ data: JSON.stringify(msg) });
  }
  drop() {
    this.onclose({});
  }
}

function fakeTimers() {
  const pending = [];
  return {
    pending,
    setTimeout(f, ms) {
      pending.push({ f, ms });
      return pending.length;
    },
    clearTimeout() {},
    fire() {
      const t = pending.shift();
      t.f();
      return t.ms;
    },
  };
}

test("client authenticates first on open, resumes after reconnect, resubscribes on a gap", () => {
  FakeWS.all = [];
  const timers = fakeTimers();
  const states = [];
  let now = 0;
  const c = new Client({ url: "ws://x/v1/ws", token: "T", WebSocket: FakeWS, timers, now: () => now, random: () => 0.5, onState: (s) => states.push(s) });
  const sub = c.subscribe("s1", req);
  c.start();
  const ws1 = FakeWS.all[0];
  assert.equal(ws1.url, "ws://x/v1/ws");
  ws1.open();
  assert.deepEqual(ws1.sent, [{ op: "auth", token: "T" }, { op: "subscribe", id: "s1", ...req }]);
  ws1.recv(snap(3, [[1000, 1]]));
  now = 50;
  ws1.recv(delta(4, 4, [{ labels: { path: "/" }, t: 1000, add: 1, value: 2 }]));
  assert.equal(c.lastDeltaAt, 50);
  assert.equal(value(sub, "/", 1000), 2);

  // A gap: resubscribe with since = the last applied seq.
  ws1.recv(delta(6, 6, [{ labels: { path: "/" }, t: 1000, add: 5, value: 9 }]));
  assert.deepEqual(ws1.sent.at(-1), { op: "subscribe", id: "s1", ...req, since: 4 });
  assert.equal(value(sub, "/", 1000), 2);
  ws1.recv(delta(5, 6, [{ labels: { path: "/" }, t: 1000, add: 7, value: 9 }]));
  assert.equal(value(sub, "/", 1000), 9);

  // The connection drops: backoff, then a new socket resumes from seq 6.
  ws1.drop();
  assert.equal(c.state, "reconnecting");
  const delay = timers.fire();
  assert.ok(delay >= 250 && delay <= 500, `first backoff ${delay}`);
  const ws2 = FakeWS.all[1];
  ws2.open();
  assert.deepEqual(ws2.sent, [{ op: "auth", token: "T" }, { op: "subscribe", id: "s1", ...req, since: 6 }]);
  ws2.recv(snap(1, [[5000, 1]], { reset: true }));
  assert.equal(value(sub, "/", 1000), undefined);
  assert.equal(value(sub, "/", 5000), 1);
  assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);

  // Messages of an unknown or dropped subscription are ignored.
  c.unsubscribe("s1");
  assert.deepEqual(ws2.sent.at(-1), { op: "unsubscribe", id: "s1" });
  ws2.recv(delta(2, 2, [{ labels: { path: "/" }, t: 5000, add: 1, value: 2 }]));
  c.stop();
  assert.equal(ws2.closed, true);
  assert.equal(c.state, "closed");
});

test("backoff doubles to a cap and resets once the server talks", () => {
  FakeWS.all = [];
  const timers = fakeTimers();
  const c = new Client({ url: "ws://x", WebSocket: FakeWS, timers, random: () => 1 });
  c.start();
  const delays = [];
  for (let i = 0; i < 10; i++) {
    FakeWS.all.at(-1).drop();
    delays.push(timers.fire());
  }
  assert.deepEqual(delays.slice(0, 4), [500, 1000, 2000, 4000]);
  assert.equal(Math.max(...delays), 30000);
  const ws = FakeWS.all.at(-1);
  ws.open();
  ws.recv({ op: "error", id: "nope", code: "bad_request", message: "x" });
  ws.drop();
  assert.equal(timers.fire(), 500);
});

test("live queries over the client: subscribe body, fold, heartbeat times", () => {
  FakeWS.all = [];
  let now = 100;
  const c = new Client({ url: "ws://x/v1/ws", token: "T", WebSocket: FakeWS, timers: fakeTimers(), now: () => now, random: () => 0.5 });
  const q = { site_id: "demo", metrics: ["visitors"], date_range: "5m" };
  const sub = c.subscribeQuery("q1", q);
  c.start();
  const ws = FakeWS.all[0];
  ws.open();
  assert.equal(c.openedAt, 100);
  assert.equal(c.lastMessageAt, null);
  assert.deepEqual(ws.sent, [{ op: "auth", token: "T" }, { op: "subscribe", id: "q1", query: q }]);
  now = 200;
  ws.recv({ op: "snapshot", id: "q1", seq: 7, results: [{ dimensions: [], metrics: [2] }], meta: {}, query: q });
  assert.equal(c.lastMessageAt, 200);
  assert.deepEqual(sub.rows.get("[]").metrics, [2]);
  // The re-resolved range (no row changed) is heard, but is no traffic.
  now = 5200;
  ws.recv({ op: "delta", id: "q1", from: 8, seq: 8, results: [], removed: [], query: { ...q, date_range: ["a", "b"] } });
  assert.equal(c.lastMessageAt, 5200);
  assert.equal(sub.changedAt, null);
  now = 6000;
  ws.recv({ op: "delta", id: "q1", from: 9, seq: 9, results: [{ dimensions: [], metrics: [3] }], removed: [] });
  assert.equal(sub.changedAt, 6000);
  assert.deepEqual(sub.rows.get("[]").metrics, [3]);
  // A gap resubscribes with the query and since.
  ws.recv({ op: "delta", id: "q1", from: 12, seq: 12, results: [] });
  assert.deepEqual(ws.sent.at(-1), { op: "subscribe", id: "q1", query: q, since: 9 });
});
