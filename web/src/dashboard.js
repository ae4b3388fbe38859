// The Pulse dashboard: live charts fed only by WebSocket deltas (no
// polling). Numbers shown are exact bucket sums over the selected window and
// sit in the DOM under stable ids and data attributes for tests:
// #total-events, #events-per-second, #total-pageviews, #total-clicks,
// #unique-visitors, #visitors-latest (each with data-value),
// #events-by-type [data-type], #pageviews-by-path [data-path],
// #clicks-by-target [data-target] (each the count, with data-count),
// #conn-state (data-state) and #freshness (data-ms).
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { Client, WINDOWS, durationMs, grid, totals } from "./live.js";

const $ = (id) => document.getElementById(id);
const TOP = 10;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#475569"];

// The read token comes from ?token= (the URL pulse serve prints), is kept
// for the tab's session, and is taken out of the address bar so it does not
// end up in screenshots, bookmarks or history.
function readToken() {
  const u = new URL(location.href);
  let token = u.searchParams.get("token");
  if (token) {
    sessionStorage.setItem("pulse_token", token);
    u.searchParams.delete("token");
    history.replaceState(null, "", u.pathname + u.search + u.hash);
  } else {
    token = sessionStorage.getItem("pulse_token") || "";
  }
  return token;
}

// wsURL carries no token: the client sends it in the auth message.
function wsURL() {
  const u = new URL("v1/ws", location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  u.search = "";
  return u.href;
}

function setNumber(el, v) {
  el.textContent = v === null ? "–" : fmt(v);
  el.dataset.value = v === null ? "" : String(v);
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

// A chart is one uPlot instance, rebuilt when its set of series changes.
class Chart {
  constructor(el, yLabel) {
    this.el = el;
    this.yLabel = yLabel;
    this.plot = null;
    this.key = "";
  }

  update(ts, lines) {
    const key = lines.map((l) => l.label).join("\u0000");
    const data = [ts.map((t) => t / 1000), ...lines.map((l) => l.values)];
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.key = key;
    this.plot = new uPlot(
      {
        width: this.width(),
        height: 220,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [{}, { label: this.yLabel, size: 60 }],
        series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: false } }))],
      },
      data,
      this.el,
    );
  }

  width() {
    return Math.max(300, this.el.clientWidth || 600);
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: this.width(), height: 220 });
  }
}

// renderList writes rows of "label count" where the count element carries
// data-KEY=label, so a test reads #clicks-by-target [data-target="signup"].
function renderList(ul, rows, key) {
  const items = rows.map((r) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = r.label;
    const n = document.createElement("span");
    n.className = "count";
    n.dataset[key] = r.label;
    n.dataset.count = String(r.total);
    n.textContent = fmt(r.total);
    li.append(name, n);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "none in this window";
    items.push(li);
  }
  ul.replaceChildren(...items);
}

function main() {
  const token = readToken();
  const params = new URL(location.href).searchParams;
  const siteInput = $("site");
  const windowSelect = $("window");
  siteInput.value = params.get("site") || "demo";
  if (WINDOWS[params.get("window")]) windowSelect.value = params.get("window");
  if (!token) $("notice").textContent = "No read token: open …/?token=TOKEN with the read token (pulse serve names where it is).";

  const charts = {
    events: new Chart($("chart-events"), "events/s"),
    pageviews: new Chart($("chart-pageviews"), "pageviews"),
    clicks: new Chart($("chart-clicks"), "clicks"),
    visitors: new Chart($("chart-visitors"), "visitors"),
  };
  let subs = {};
  let generation = 0;
  let dirty = true;

  const client = new Client({
    url: wsURL(),
    token,
    onState: (s) => {
      const el = $("conn-state");
      el.textContent = s;
      el.dataset.state = s;
    },
    onData: () => {
      dirty = true;
    },
    onError: (sub, msg) => {
      $("notice").textContent = `${sub ? sub.req.metric + ": " : ""}${msg.code || "error"}: ${msg.message || ""}`;
    },
  });

  // subscribeAll (re)creates every subscription for the picked site and
  // window, under fresh ids so late messages of the old ones are ignored.
  function subscribeAll() {
    for (const id of Object.values(subs).map((s) => s.id)) client.unsubscribe(id);
    const site = siteInput.value.trim() || "demo";
    const win = windowSelect.value;
    const step = WINDOWS[win];
    const g = ++generation;
    const base = { site, step, window: win };
    subs = {
      events: client.subscribe(`events-${g}`, { ...base, metric: "events", group_by: ["type"] }),
      pageviews: client.subscribe(`pageviews-${g}`, { ...base, metric: "pageviews", group_by: ["path"] }),
      clicks: client.subscribe(`clicks-${g}`, { ...base, metric: "clicks", group_by: ["target"] }),
      visitors: client.subscribe(`visitors-${g}`, { ...base, metric: "visitors" }),
      // Uniques do not add up across buckets, so "today" is its own 1d bucket.
      today: client.subscribe(`today-${g}`, { site, metric: "visitors", step: "1d", window: "24h" }),
    };
    const u = new URL(location.href);
    u.searchParams.set("site", site);
    u.searchParams.set("window", win);
    history.replaceState(null, "", u.pathname + u.search + u.hash);
    $("notice").textContent = token ? "" : $("notice").textContent;
    dirty = true;
  }

  function render() {
    const now = Date.now();
    const win = windowSelect.value;
    const stepMs = durationMs(WINDOWS[win]);
    const ts = grid(now, durationMs(win), stepMs);
    for (const s of Object.values(subs)) if (s !== subs.today) s.prune(ts[0]);
    subs.today.prune(grid(now, 86400e3, 86400e3)[0]);

    const ev = totals(subs.events, ts);
    const perBucket = ts.map((_, i) => ev.reduce((a, s) => a + s.values[i], 0));
    const rate = perBucket.map((v) => v / (stepMs / 1000));
    setNumber($("total-events"), subs.events.ready ? perBucket.reduce((a, b) => a + b, 0) : null);
    // The bucket before the current one is the last complete one.
    setNumber($("events-per-second"), subs.events.ready ? rate[rate.length - 2] ?? rate[0] : null);
    renderList($("events-by-type"), ev.map((s) => ({ label: s.labels.type ?? "", total: s.total })), "type");
    charts.events.update(ts, [{ label: "events/s", values: rate }]);

    const pv = totals(subs.pageviews, ts);
    setNumber($("total-pageviews"), subs.pageviews.ready ? pv.reduce((a, s) => a + s.total, 0) : null);
    const topPaths = pv.slice(0, TOP).map((s) => ({ label: s.labels.path ?? "", total: s.total, values: s.values }));
    renderList($("pageviews-by-path"), topPaths, "path");
    charts.pageviews.update(ts, topPaths);

    const cl = totals(subs.clicks, ts);
    setNumber($("total-clicks"), subs.clicks.ready ? cl.reduce((a, s) => a + s.total, 0) : null);
    const targets = cl.map((s) => ({ label: s.labels.target ?? "", total: s.total, values: s.values }));
    renderList($("clicks-by-target"), targets, "target");
    charts.clicks.update(ts, targets.slice(0, TOP));

    const vi = totals(subs.visitors, ts);
    const vv = vi.length ? vi[0].values : ts.map(() => 0);
    setNumber($("visitors-latest"), subs.visitors.ready ? vv[vv.length - 1] : null);
    const today = grid(now, 86400e3, 86400e3)[0];
    const td = [...subs.today.series.values()][0];
    setNumber($("unique-visitors"), subs.today.ready ? (td?.points.get(today) ?? 0) : null);
    charts.visitors.update(ts, [{ label: "unique visitors per bucket", values: vv }]);

    for (const [name, s] of Object.entries(subs)) {
      const el = document.querySelector(`[data-error-for="${name}"]`);
      if (el) el.textContent = s.error ? `error: ${s.error}` : "";
    }
  }

  function tick() {
    const f = $("freshness");
    if (client.lastDeltaAt === null) {
      f.textContent = "no delta yet";
      f.dataset.ms = "";
    } else {
      const ms = Math.max(0, Date.now() - client.lastDeltaAt);
      f.textContent = `${ms} ms ago`;
      f.dataset.ms = String(ms);
    }
  }

  siteInput.addEventListener("change", subscribeAll);
  windowSelect.addEventListener("change", subscribeAll);
  addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

  subscribeAll();
  client.start();
  // Deltas mark the view dirty and one frame draws them; the window slides
  // (and old buckets fall out) once a second even without deltas.
  const frame = () => {
    if (dirty) {
      dirty = false;
      render();
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  setInterval(() => (dirty = true), 1000);
  setInterval(tick, 100);
  tick();
}

main();
