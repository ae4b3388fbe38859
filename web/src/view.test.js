// Tests of the dashboard's view logic and live-query fold: `npm test` in web/.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as V from "./view.js";
import { QuerySub } from "./live.js";

const base = (over = {}) => ({ ...V.parseState("", "UTC"), ...over });

test("URL state round-trips and refuses what it cannot use", () => {
  const cases = [
    // search, default tz, want (subset of the state)
    ["", "Europe/Berlin", { period: "day", tz: "Europe/Berlin", filters: [], metric: "visitors", site: "demo" }],
    ["?period=7d&tz=Asia/Tokyo&f=visit:source,is,Google", "UTC", { period: "7d", tz: "Asia/Tokyo", filters: [["visit:source", "is", "Google"]] }],
    ["?period=bogus", "UTC", { period: "day" }],
    ["?period=custom&from=2026-12-01&to=2026-12-07", "UTC", { period: "custom", from: "2026-12-01", to: "2026-12-07" }],
    ["?period=custom&from=2026-12-07&to=2026-12-01", "UTC", { period: "day" }],
    ["?period=custom&from=yesterday&to=2026-12-01", "UTC", { period: "day" }],
    ["?f=event:page,is,/a,b", "UTC", { filters: [["event:page", "is", "/a,b"]] }],
    ["?f=nodim,is,x&f=visit:os,like,x&f=visit:os", "UTC", { filters: [] }],
    // a second "is" on one dimension replaces the first
    ["?f=visit:source,is,Google&f=visit:source,is,Bing&f=visit:os,is_not,Linux", "UTC",
      { filters: [["visit:source", "is", "Bing"], ["visit:os", "is_not", "Linux"]] }],
    ["?metric=sum:props.price&tab_sources=visit:utm_medium&tab_pages=nope", "UTC",
      { metric: "sum:props.price", tabs: { sources: "visit:utm_medium" } }],
  ];
  for (const [search, tz, want] of cases) {
    const st = V.parseState(search, tz);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(st[k], v, `${search} ${k}`);
    assert.deepEqual(V.parseState(V.stateSearch(st), "Other/Zone"), st, `round trip of ${search}`);
  }
  assert.equal(V.stateSearch(base({ period: "7d", tz: "Europe/Berlin", filters: [["visit:source", "is", "Google"]] })),
    "?period=7d&tz=Europe/Berlin&f=visit:source,is,Google");
});

test("filters: add, replace, remove, API form", () => {
  let f = V.withFilter([], ["visit:source", "is", "Google"]);
  f = V.withFilter(f, ["visit:country", "is", "DE"]);
  f = V.withFilter(f, ["visit:source", "is", "Hacker News"]);
  assert.deepEqual(f, [["visit:country", "is", "DE"], ["visit:source", "is", "Hacker News"]]);
  assert.deepEqual(V.withoutFilter(f, ["visit:country", "is", "DE"]), [["visit:source", "is", "Hacker News"]]);
  assert.deepEqual(V.apiFilters(f), [["is", "visit:country", ["DE"]], ["is", "visit:source", ["Hacker News"]]]);
});

test("dates in a time zone and previous periods", () => {
  // 2026-12-07 23:30 UTC is already Dec 8 in Berlin and Tokyo, still Dec 7 in New York.
  const now = Date.UTC(2026, 11, 7, 23, 30);
  assert.equal(V.todayIn("UTC", now), "2026-12-07");
  assert.equal(V.todayIn("Europe/Berlin", now), "2026-12-08");
  assert.equal(V.todayIn("America/New_York", now), "2026-12-07");
  assert.equal(V.addDays("2026-03-01", -1), "2026-02-28");
  assert.equal(V.daysBetween("2026-12-01", "2026-12-07"), 6);
  const cases = [
    ["day", "UTC", ["2026-12-06", "2026-12-06"]],
    ["day", "Asia/Tokyo", ["2026-12-07", "2026-12-07"]],
    ["7d", "UTC", ["2026-11-24", "2026-11-30"]],
    ["30d", "UTC", ["2026-10-07", "2026-11-06"]],
    ["month", "UTC", ["2026-11-01", "2026-11-30"]],
    ["month", "Asia/Tokyo", ["2026-11-01", "2026-11-30"]],
    ["12mo", "UTC", ["2025-01-01", "2025-12-31"]],
    ["realtime", "UTC", ["2026-12-07T22:30:00Z", "2026-12-07T23:00:00Z"]],
    ["24h", "UTC", ["2026-12-05T23:30:00Z", "2026-12-06T23:30:00Z"]],
  ];
  for (const [period, tz, want] of cases) assert.deepEqual(V.previousRange(base({ period, tz }), now), want, `${period} ${tz}`);
  assert.deepEqual(V.previousRange(base({ period: "custom", from: "2026-12-01", to: "2026-12-07" }), now), ["2026-11-24", "2026-11-30"]);
});

test("the chart's time dimension follows the range", () => {
  const cases = [
    [{ period: "realtime" }, "time:minute"],
    [{ period: "day" }, "time:hour"],
    [{ period: "24h" }, "time:hour"],
    [{ period: "7d" }, "time:day"],
    [{ period: "30d" }, "time:day"],
    [{ period: "month" }, "time:day"],
    [{ period: "12mo" }, "time:month"],
    [{ period: "custom", from: "2026-12-07", to: "2026-12-07" }, "time:hour"],
    [{ period: "custom", from: "2026-10-01", to: "2026-12-07" }, "time:day"],
    [{ period: "custom", from: "2026-01-01", to: "2026-12-07" }, "time:month"],
  ];
  for (const [over, want] of cases) assert.equal(V.timeDimension(base(over)), want, JSON.stringify(over));
});

test("queries carry the view's range, zone and filters to every panel", () => {
  const st = base({ period: "7d", tz: "Europe/Berlin", filters: [["visit:source", "is", "Google"]], tabs: { pages: "visit:entry_page" } });
  const q = V.queries(st, ["2026-11-24", "2026-11-30"]);
  const want = [["is", "visit:source", ["Google"]]];
  for (const [name, body] of Object.entries(q)) {
    assert.equal(body.timezone, "Europe/Berlin", name);
    assert.equal(body.site_id, "demo", name);
    if (name === "activity") assert.equal(body.filters, undefined, name);
    else assert.deepEqual(body.filters.slice(0, 1), want, name);
  }
  assert.equal(q.current.date_range, "5m");
  assert.equal(q["top-events"].date_range, "7d");
  assert.deepEqual(q["prev-visits"].date_range, ["2026-11-24", "2026-11-30"]);
  assert.deepEqual(q["chart-visitors"].dimensions, ["time:day"]);
  assert.deepEqual(q["chart-visitors"].include, { time_labels: true });
  assert.equal(q["chart-metric"], undefined);
  assert.deepEqual(q["panel-pages"].dimensions, ["visit:entry_page"]);
  assert.deepEqual(q["panel-pages"].metrics, ["visits", "visitors"]);
  assert.deepEqual(q["panel-sources"].order_by, [["visitors", "desc"]]);
  assert.deepEqual(q["panel-goals"].filters[1], ["is_not", "event:goal", ["pageview"]]);
  const custom = V.queries(base({ metric: "sum:props.price" }), null);
  assert.deepEqual(custom["chart-metric"].metrics, ["sum:props.price"]);
  assert.deepEqual(custom["top-custom"].metrics, ["sum:props.price"]);
  assert.equal(custom["prev-custom"], undefined);
  assert.equal(V.queries(base({ metric: "bounce_rate" }), null)["top-custom"], undefined);
});

test("series, labels, changes and formats", () => {
  const labels = ["2026-12-06", "2026-12-07", "2026-12-08"];
  assert.deepEqual(V.series(labels, [{ dimensions: ["2026-12-07"], metrics: [4] }]), [0, 4, 0]);
  assert.equal(V.labelSeconds("2026-12-07 10:00:00"), Date.UTC(2026, 11, 7, 10) / 1000);
  assert.equal(V.labelSeconds("2026-12-07"), Date.UTC(2026, 11, 7) / 1000);
  const changes = [[10, 5, 100], [5, 10, -50], [3, 0, null], [null, 3, null], [3, null, null], [7, 7, 0]];
  for (const [c, p, want] of changes) assert.equal(V.change(c, p), want, `${c} vs ${p}`);
  const formats = [["bounce_rate", 42, "42%"], ["visit_duration", 5, "5s"], ["visit_duration", 65, "1m 05s"],
    ["visit_duration", 3720, "1h 02m"], ["visitors", 12345, "12.3k"], ["visitors", 7, "7"], ["avg:props.x", 1.5, "1.50"], ["visitors", null, "–"]];
  for (const [m, v, want] of formats) assert.equal(V.format(m, v), want, `${m} ${v}`);
});

test("freshness tells no traffic from stalled", () => {
  const t = 1_000_000;
  const cases = [
    ["not open", { state: "reconnecting", openedAt: t - 1000, lastMessageAt: t - 1000, changedAt: t - 1000 }, "offline"],
    ["just opened, nothing yet", { state: "open", openedAt: t - 1000, lastMessageAt: null, changedAt: null }, "quiet"],
    ["heartbeat, no rows", { state: "open", openedAt: t - 600e3, lastMessageAt: t - 4000, changedAt: t - 120e3 }, "quiet"],
    ["rows lately", { state: "open", openedAt: t - 600e3, lastMessageAt: t - 2000, changedAt: t - 2000 }, "live"],
    ["silent server", { state: "open", openedAt: t - 600e3, lastMessageAt: t - V.STALL_MS - 1, changedAt: t - 2000 }, "stalled"],
    ["never heard since open", { state: "open", openedAt: t - V.STALL_MS - 1, lastMessageAt: null, changedAt: null }, "stalled"],
  ];
  for (const [name, c, want] of cases) assert.equal(V.freshness(t, c).state, want, name);
});

test("a live query folds snapshot and deltas into the REST answer", () => {
  const q = { site_id: "demo", metrics: ["visitors", "pageviews"], date_range: "day", dimensions: ["event:page"], order_by: [["visitors", "desc"]] };
  const s = new QuerySub("q1", q);
  assert.deepEqual(s.subscribeMsg(), { op: "subscribe", id: "q1", query: q });
  s.onSnapshot({ op: "snapshot", id: "q1", seq: 3, results: [{ dimensions: ["/a"], metrics: [1, 2] }, { dimensions: ["/b"], metrics: [2, 2] }], meta: {}, query: q });
  assert.equal(s.changedAt, null, "a snapshot is no traffic");
  const cases = [
    // delta, want result, want rows (sorted)
    [{ from: 4, seq: 4, results: [{ dimensions: ["/a"], metrics: [3, 5] }], removed: [] }, "applied", [["/a", 3, 5], ["/b", 2, 2]]],
    [{ from: 4, seq: 4, results: [{ dimensions: ["/a"], metrics: [9, 9] }] }, "stale", [["/a", 3, 5], ["/b", 2, 2]]],
    [{ from: 5, seq: 6, results: [{ dimensions: ["/c"], metrics: [1, 1] }], removed: [["/b"]] }, "applied", [["/a", 3, 5], ["/c", 1, 1]]],
    [{ from: 9, seq: 9, results: [] }, "gap", [["/a", 3, 5], ["/c", 1, 1]]],
  ];
  cases.forEach(([d, want, rows], i) => {
    assert.equal(s.onDelta({ op: "delta", id: "q1", ...d }, 100 + i), want, `delta ${i}`);
    assert.deepEqual(s.sorted().map((r) => [r.dimensions[0], ...r.metrics]), rows, `rows after delta ${i}`);
  });
  assert.equal(s.changedAt, 102);
  assert.deepEqual(s.subscribeMsg(), { op: "subscribe", id: "q1", query: q, since: 6 });
  // A delta carrying only the re-resolved query is a heartbeat, no change.
  const moved = { ...q, date_range: ["2026-12-08T00:00:00Z", "2026-12-09T00:00:00Z"] };
  assert.equal(s.onDelta({ op: "delta", id: "q1", from: 7, seq: 7, results: [], removed: [], query: moved }, 200), "applied");
  assert.equal(s.changedAt, 102);
  assert.deepEqual(s.resolved, moved);
});

test("default order: time ascending, then the first metric descending", () => {
  const s = new QuerySub("q", { metrics: ["visitors"], dimensions: ["time:day"] });
  s.onSnapshot({ seq: 1, results: [{ dimensions: ["2026-12-07"], metrics: [1] }, { dimensions: ["2026-12-05"], metrics: [9] }] });
  assert.deepEqual(s.sorted().map((r) => r.dimensions[0]), ["2026-12-05", "2026-12-07"]);
  const p = new QuerySub("p", { metrics: ["visitors"], dimensions: ["visit:source"] });
  p.onSnapshot({ seq: 1, results: [{ dimensions: ["b"], metrics: [1] }, { dimensions: ["a"], metrics: [1] }, { dimensions: ["c"], metrics: [5] }] });
  assert.deepEqual(p.sorted().map((r) => r.dimensions[0]), ["c", "a", "b"]);
});
