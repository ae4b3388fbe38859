// The dashboard's view state and the Stats API queries it asks, with no DOM
// so node's test runner can exercise it: the URL form of a view (period,
// time zone, filters, metric), date ranges and their previous periods in a
// time zone, the live queries of every panel, and number formats.

/** The date ranges offered, as Stats API date_range values. */
export const PERIODS = [
  ["realtime", "Realtime (30 min)"],
  ["day", "Today"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["month", "This month"],
  ["12mo", "Last 12 months"],
  ["custom", "Custom range"],
];

/** Filter operators a URL may carry (the Stats API's). */
export const OPS = ["is", "is_not", "contains", "contains_not", "matches", "matches_not"];

/** The top stats: metric, label, and whether it needs visits (sessions). */
export const TOP_METRICS = [
  ["visitors", "Unique visitors"],
  ["visits", "Total visits"],
  ["pageviews", "Total pageviews"],
  ["bounce_rate", "Bounce rate"],
  ["visit_duration", "Visit duration"],
];

/** The event metrics of the top stats; the rest are visit metrics, asked apart so one 400 leaves the other. */
export const EVENT_TOP = ["visitors", "pageviews"];
export const VISIT_TOP = ["visits", "bounce_rate", "visit_duration"];

/** Panels and their tabs: [dimension, tab label, metrics]. */
export const PANELS = {
  pages: [
    ["event:page", "Top pages", ["visitors", "pageviews"]],
    ["visit:entry_page", "Entry pages", ["visits", "visitors"]],
    ["visit:exit_page", "Exit pages", ["visits", "visitors"]],
  ],
  sources: [
    ["visit:source", "Sources", ["visitors"]],
    ["visit:utm_source", "UTM source", ["visitors"]],
    ["visit:utm_medium", "UTM medium", ["visitors"]],
    ["visit:utm_campaign", "UTM campaign", ["visitors"]],
    ["visit:utm_content", "UTM content", ["visitors"]],
    ["visit:utm_term", "UTM term", ["visitors"]],
  ],
  countries: [["visit:country", "Countries", ["visitors"]]],
  devices: [
    ["visit:browser", "Browser", ["visitors"]],
    ["visit:os", "OS", ["visitors"]],
    ["visit:device", "Device", ["visitors"]],
  ],
  goals: [["event:goal", "Goals", ["visitors", "events"]]],
};

/** Rows shown per panel. */
export const PANEL_ROWS = 10;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * parseState reads a view from a URL's search string; anything missing or
 * invalid takes its default (period "day", time zone defaultTz).
 */
export function parseState(search, defaultTz) {
  const p = new URLSearchParams(search);
  const periods = PERIODS.map(([v]) => v);
  const st = {
    site: p.get("site") || "demo",
    period: periods.includes(p.get("period")) ? p.get("period") : "day",
    from: DATE.test(p.get("from") || "") ? p.get("from") : "",
    to: DATE.test(p.get("to") || "") ? p.get("to") : "",
    tz: p.get("tz") || defaultTz || "UTC",
    metric: p.get("metric") || "visitors",
    filters: [],
    tabs: {},
  };
  if (st.period === "custom" && (!st.from || !st.to || st.to < st.from)) st.period = "day";
  if (st.period !== "custom") st.from = st.to = ""; // the URL carries them only for custom
  for (const f of p.getAll("f")) {
    const parsed = parseFilter(f);
    if (parsed) st.filters = withFilter(st.filters, parsed);
  }
  for (const name of Object.keys(PANELS)) {
    const t = p.get("tab_" + name);
    if (t && PANELS[name].some(([d]) => d === t)) st.tabs[name] = t;
  }
  return st;
}

/** parseFilter reads "dimension,op,value" (the value may hold commas). */
export function parseFilter(s) {
  const i = s.indexOf(",");
  const j = i < 0 ? -1 : s.indexOf(",", i + 1);
  if (j < 0) return null;
  const dim = s.slice(0, i);
  const op = s.slice(i + 1, j);
  if (!/^(event|visit):[a-z_:.0-9-]+$/i.test(dim) || !OPS.includes(op)) return null;
  return [dim, op, s.slice(j + 1)];
}

/** stateSearch is the URL search string of a view (its inverse of parseState). */
export function stateSearch(st) {
  const p = new URLSearchParams();
  if (st.site !== "demo") p.set("site", st.site);
  p.set("period", st.period);
  if (st.period === "custom") {
    p.set("from", st.from);
    p.set("to", st.to);
  }
  p.set("tz", st.tz);
  if (st.metric !== "visitors") p.set("metric", st.metric);
  for (const [dim, op, value] of st.filters) p.append("f", `${dim},${op},${value}`);
  for (const [name, t] of Object.entries(st.tabs).sort()) {
    if (t !== PANELS[name][0][0]) p.set("tab_" + name, t);
  }
  // Commas, colons and slashes are legal in a query string; keeping them makes a
  // shared link readable (f=visit:source,is,Google).
  return "?" + p.toString().replaceAll("%2C", ",").replaceAll("%3A", ":").replaceAll("%2F", "/");
}

/**
 * withFilter adds f to filters, replacing an "is" filter on the same
 * dimension (two "is" on one dimension would match nothing).
 */
export function withFilter(filters, f) {
  const out = filters.filter((g) => !(g[0] === f[0] && g[1] === f[1] && (f[1] === "is" || g[2] === f[2])));
  out.push(f);
  return out;
}

/** withoutFilter drops the filter equal to f. */
export function withoutFilter(filters, f) {
  return filters.filter((g) => !(g[0] === f[0] && g[1] === f[1] && g[2] === f[2]));
}

/** apiFilters is the Stats API form of the view's filters. */
export function apiFilters(filters) {
  return filters.map(([dim, op, value]) => [op, dim, [value]]);
}

/** todayIn is the date (YYYY-MM-DD) at nowMs in the time zone tz. */
export function todayIn(tz, nowMs) {
  // en-CA writes dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(nowMs));
}

/** addDays moves a YYYY-MM-DD date by n days (calendar arithmetic, no zone). */
export function addDays(date, n) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** addMonths moves the first day of date's month by n months. */
function monthStart(date, n) {
  const [y, m] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1 + n, 1)).toISOString().slice(0, 10);
}

/** daysBetween counts the days from a to b (dates). */
export function daysBetween(a, b) {
  const t = (s) => Date.UTC(...s.split("-").map((x, i) => Number(x) - (i === 1 ? 1 : 0)));
  return Math.round((t(b) - t(a)) / 86400e3);
}

/** dateRange is the Stats API date_range of the view. */
export function dateRange(st) {
  return st.period === "custom" ? [st.from, st.to] : st.period;
}

/**
 * previousRange is the range the top stats are compared with: the same
 * length just before the view's range (the previous calendar month for
 * "month", the previous 12 months for "12mo"), as dates in the view's time
 * zone, or as instants for the ranges that end now.
 */
export function previousRange(st, nowMs) {
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  const today = todayIn(st.tz, nowMs);
  switch (st.period) {
    case "realtime":
      return [iso(nowMs - 3600e3), iso(nowMs - 1800e3)];
    case "24h":
      return [iso(nowMs - 2 * 86400e3), iso(nowMs - 86400e3)];
    case "day":
      return [addDays(today, -1), addDays(today, -1)];
    case "7d":
      return [addDays(today, -13), addDays(today, -7)];
    case "30d": // the current range is today-30 .. today, 31 days (Plausible's)
      return [addDays(today, -61), addDays(today, -31)];
    case "month":
      return [monthStart(today, -1), addDays(monthStart(today, 0), -1)];
    case "12mo":
      return [monthStart(today, -23), addDays(monthStart(today, -11), -1)];
    case "custom": {
      const n = daysBetween(st.from, st.to) + 1;
      return [addDays(st.from, -n), addDays(st.from, -1)];
    }
  }
  return null;
}

/** timeDimension is the chart's time dimension for the view's range. */
export function timeDimension(st) {
  switch (st.period) {
    case "realtime":
      return "time:minute";
    case "day":
    case "24h":
      return "time:hour";
    case "12mo":
      return "time:month";
    case "custom": {
      const n = daysBetween(st.from, st.to) + 1;
      return n <= 1 ? "time:hour" : n <= 92 ? "time:day" : "time:month";
    }
  }
  return "time:day";
}

/** isCustomMetric: a sum:/avg: metric of a prop, which the chart can show. */
export function isCustomMetric(m) {
  return /^(sum|avg):props\.[^\s]+$/.test(m);
}

/**
 * queries returns every live query of the view, by name: the Stats API
 * bodies the dashboard subscribes. prevRange is previousRange's answer.
 */
export function queries(st, prevRange) {
  const base = { site_id: st.site, timezone: st.tz, filters: apiFilters(st.filters) };
  const range = dateRange(st);
  const q = {
    current: { ...base, metrics: ["visitors"], date_range: "5m" },
    // The site's events today, unfiltered: rows change only when events
    // arrive, so the freshness indicator reads traffic from it.
    activity: { site_id: st.site, timezone: st.tz, metrics: ["events"], date_range: "day" },
    "top-events": { ...base, metrics: EVENT_TOP, date_range: range },
    "top-visits": { ...base, metrics: VISIT_TOP, date_range: range },
    "chart-visitors": chartQuery(base, st, "visitors"),
  };
  if (prevRange) {
    q["prev-events"] = { ...base, metrics: EVENT_TOP, date_range: prevRange };
    q["prev-visits"] = { ...base, metrics: VISIT_TOP, date_range: prevRange };
  }
  if (st.metric !== "visitors") q["chart-metric"] = chartQuery(base, st, st.metric);
  if (isCustomMetric(st.metric)) {
    q["top-custom"] = { ...base, metrics: [st.metric], date_range: range };
    if (prevRange) q["prev-custom"] = { ...base, metrics: [st.metric], date_range: prevRange };
  }
  for (const name of Object.keys(PANELS)) {
    const [dim, , metrics] = panelTab(st, name);
    const p = {
      ...base,
      metrics,
      date_range: range,
      dimensions: [dim],
      order_by: [[metrics[0], "desc"]],
      pagination: { limit: PANEL_ROWS },
    };
    // Goals are the events other than pageviews (engagement events are
    // no goal, and the Stats API leaves them out already).
    if (name === "goals") p.filters = [...base.filters, ["is_not", "event:goal", ["pageview"]]];
    q["panel-" + name] = p;
  }
  return q;
}

function chartQuery(base, st, metric) {
  return {
    ...base,
    metrics: [metric],
    date_range: dateRange(st),
    dimensions: [timeDimension(st)],
    include: { time_labels: true },
  };
}

/** panelTab is the selected tab of a panel: [dimension, label, metrics]. */
export function panelTab(st, name) {
  const tabs = PANELS[name];
  return tabs.find(([d]) => d === st.tabs[name]) || tabs[0];
}

/**
 * series aligns a time query's rows with its time labels: one value per
 * label, 0 for a bucket without a row (the Stats API leaves empty buckets
 * out of results and lists them in meta.time_labels).
 */
export function series(labels, rows) {
  const by = new Map(rows.map((r) => [r.dimensions[0], r.metrics[0]]));
  return (labels || []).map((l) => by.get(l) ?? 0);
}

/** labelSeconds reads a time label ("2026-12-07" or "2026-12-07 10:00:00") as its wall clock in UTC seconds. */
export function labelSeconds(label) {
  const [d, t = "00:00:00"] = label.split(" ");
  const [y, mo, da] = d.split("-").map(Number);
  const [h, mi, s] = t.split(":").map(Number);
  return Date.UTC(y, mo - 1, da, h, mi, s) / 1000;
}

/** change is the % change from prev to cur, null when there is no base. */
export function change(cur, prev) {
  if (cur == null || prev == null || prev === 0) return null;
  return Math.round(((cur - prev) / prev) * 100);
}

/** format writes a metric's value as the dashboard shows it. */
export function format(metric, v) {
  if (v == null) return "–";
  if (metric === "bounce_rate") return `${v}%`;
  if (metric === "visit_duration") {
    const s = Math.round(v);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    return m < 60 ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  }
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** How long the server may say nothing before the view is stalled (it re-resolves the 5 minute query every 5 s). */
export const STALL_MS = 15000;
/** How long without new rows before the view says "no traffic". */
export const QUIET_MS = 30000;

/**
 * freshness tells the states apart: "offline" (no open connection),
 * "stalled" (open, but nothing from the server for STALL_MS), "quiet"
 * (healthy, no new rows for QUIET_MS) and "live" (healthy, rows changed
 * lately). ms is the time since the last message (stalled) or the last
 * change (quiet, live).
 */
export function freshness(nowMs, { state, openedAt, lastMessageAt, changedAt }) {
  if (state !== "open") return { state: "offline", ms: null };
  const heard = Math.max(openedAt ?? -Infinity, lastMessageAt ?? -Infinity);
  if (nowMs - heard > STALL_MS) return { state: "stalled", ms: nowMs - heard };
  if (changedAt == null || nowMs - changedAt > QUIET_MS) {
    return { state: "quiet", ms: changedAt == null ? null : nowMs - changedAt };
  }
  return { state: "live", ms: nowMs - changedAt };
}
