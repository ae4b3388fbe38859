// The Pulse dashboard: Plausible's views, live. Every number comes from the
// Stats API's live queries over /v1/ws (a snapshot, then deltas; no
// polling); GET /v1/metrics lists the custom metrics and goals. The view
// (period, time zone, filters, chart metric, tabs) lives in the URL.
//
// Stable ids and data attributes for tests:
//   #conn-state[data-state]            idle, connecting, open, reconnecting, closed
//   #freshness[data-state][data-ms]    live, quiet (no traffic), stalled, offline
//   #site, #period, #from, #to, #tz, #custom-metric   the controls (inputs and selects)
//   #stat-current[data-value]          current visitors (visitors over 5m)
//   #stat-METRIC[data-value][data-prev][data-change][data-error][aria-pressed]
//                                      METRIC: visitors, visits, pageviews, bounce_rate,
//                                      visit_duration, custom (a sum:/avg: metric); a button
//                                      that picks the chart's metric
//   #main-chart[data-metric][data-dimension][data-labels][data-visitors][data-values][data-state]
//                                      data-labels/-visitors/-values: JSON arrays, the chart's
//                                      time labels, visitors and the picked metric per label
//   #panel-NAME[data-dim][data-state]  NAME: pages, sources, countries, devices, goals
//   #panel-NAME [role=tab][data-tab=DIMENSION][aria-selected]
//   #list-NAME li[data-value=V] button.row[data-dim][data-value]   click: filter "is" V
//   #list-NAME li[data-value=V] [data-metric=M][data-value]        the row's metric M
//   #filters button.chip[data-dim][data-op][data-value]             click: remove the filter
//   [data-error-for=QUERY]             a query's error (QUERY: a name of view.queries)
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { Client } from "./live.js";
import * as V from "./view.js";

const $ = (id) => document.getElementById(id);

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

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

/** rowLabel is what a panel row shows for its value. */
function rowLabel(dim, value) {
  if (dim === "visit:country" && /^[A-Z]{2}$/.test(value) && regionNames) {
    try {
      return `${regionNames.of(value)} (${value})`;
    } catch {
      return value;
    }
  }
  return value === "" ? "(empty)" : value;
}

const DIM_NAMES = {
  "event:page": "page",
  "event:goal": "goal",
  "visit:entry_page": "entry page",
  "visit:exit_page": "exit page",
  "visit:source": "source",
  "visit:country": "country",
  "visit:browser": "browser",
  "visit:os": "OS",
  "visit:device": "device",
};
const dimName = (d) => DIM_NAMES[d] || d.replace(/^(visit|event):/, "").replace("utm_", "UTM ");
const metricName = (m) => (V.TOP_METRICS.find(([k]) => k === m) || [m, m])[1];

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** tickLabel writes a bucket start (wall-clock seconds held as UTC) at the chart's grain. */
function tickLabel(sec, dimension) {
  const d = new Date(sec * 1000);
  const hm = `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
  if (dimension === "time:minute") return hm;
  if (dimension === "time:hour") return d.getUTCHours() === 0 ? `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}` : hm;
  if (dimension === "time:month") return `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

/** Chart is the main uPlot chart: visitors, and the picked metric on its own axis. */
class Chart {
  constructor(host) {
    this.host = host;
    this.plot = null;
    this.key = "";
  }

  update(labels, visitors, metric, values, dimension) {
    const xs = labels.map(V.labelSeconds);
    const data = values ? [xs, visitors, values] : [xs, visitors];
    const key = [metric, values ? "2" : "1", dimension].join("\u0000");
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.key = key;
    const label = (u, v) => (v == null ? "–" : tickLabel(v, dimension));
    const series = [{ label: "Time", value: label }, { label: "Visitors", stroke: "#4f46e5", fill: "rgba(79,70,229,.08)", width: 2, scale: "y" }];
    // Ticks at bucket starts (at most about 12), so a day chart has no
    // hour ticks and a month chart's ticks fall on the months.
    const splits = (u) => {
      const x = u.data[0];
      const k = Math.max(1, Math.ceil(x.length / 12));
      return x.filter((_, i) => i % k === 0);
    };
    const axes = [{ splits, values: (u, ticks) => ticks.map((t) => tickLabel(t, dimension)), space: 40 }, { label: "visitors", size: 55 }];
    if (values) {
      series.push({ label: metricName(metric), stroke: "#ea580c", width: 2, scale: "y2" });
      axes.push({ scale: "y2", side: 1, label: metricName(metric), size: 60, grid: { show: false } });
    }
    const zero = (u, min, max) => [0, Math.max(1, max * 1.1)];
    this.plot = new uPlot(
      {
        width: this.width(),
        height: 260,
        // Labels are wall-clock times of the view's time zone, held as UTC.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: zero }, y2: { range: zero } },
        axes,
        series,
      },
      data,
      this.host,
    );
  }

  width() {
    return Math.max(300, this.host.clientWidth || 800);
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: this.width(), height: 260 });
  }
}

/** total reads a metric of a no-dimension query: 0 without rows, null before its snapshot. */
function total(sub, metric) {
  if (!sub || !sub.ready) return null;
  const i = sub.query.metrics.indexOf(metric);
  const row = sub.rows.get("[]");
  return row ? row.metrics[i] : 0;
}

/** keepFocus rebuilds a list with build() and gives the focus back to the element of the same key. */
function keepFocus(container, selector, keyOf, build) {
  const active = document.activeElement;
  const key = active && container.contains(active) && active.matches(selector) ? keyOf(active) : null;
  build();
  if (key !== null) {
    for (const e of container.querySelectorAll(selector)) {
      if (keyOf(e) === key) {
        e.focus();
        break;
      }
    }
  }
}

function main() {
  const token = readToken();
  const browserTz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  let state = V.parseState(location.search, browserTz);
  // The site's time zone is the default; tz= in the URL or the selector
  // pins another.
  let tzPinned = new URLSearchParams(location.search).has("tz");
  if (!token) $("notice").textContent = "No read token: open …/?token=TOKEN with the read token (pulse serve names where it is).";

  const chart = new Chart($("chart"));
  const subs = {}; // query name -> {body, sub}
  let generation = 0;
  let prevAt = 0;
  let dirty = true;
  let catalog = [];

  const client = new Client({
    url: wsURL(),
    token,
    onState: (s) => {
      $("conn-state").textContent = s;
      $("conn-state").dataset.state = s;
      dirty = true;
    },
    onData: () => (dirty = true),
    onError: (sub, msg) => {
      // unknown_id answers the unsubscribe of a query the server had refused.
      if (!sub && msg.code !== "unknown_id") $("notice").textContent = `${msg.code || "error"}: ${msg.message || ""}`;
      dirty = true;
    },
  });

  // subscribe (re)subscribes the view's queries; a query whose body did
  // not change keeps its subscription, a changed one gets a fresh id so
  // late messages of the old one are ignored.
  function subscribe() {
    const now = Date.now();
    prevAt = now;
    const want = V.queries(state, V.previousRange(state, now));
    const g = ++generation;
    for (const [name, s] of Object.entries(subs)) {
      if (!want[name] || JSON.stringify(want[name]) !== s.body) {
        client.unsubscribe(s.sub.id);
        delete subs[name];
      }
    }
    for (const [name, body] of Object.entries(want)) {
      if (!subs[name]) subs[name] = { body: JSON.stringify(body), sub: client.subscribeQuery(`${name}-${g}`, body) };
    }
    dirty = true;
  }

  // apply makes st the view: the URL, the controls and the subscriptions.
  function apply(st) {
    state = st;
    history.replaceState(null, "", location.pathname + V.stateSearch(state) + location.hash);
    syncControls();
    subscribe();
  }

  function syncControls() {
    $("site").value = state.site;
    $("period").value = state.period;
    $("custom-dates").hidden = state.period !== "custom";
    if (state.period === "custom") {
      $("from").value = state.from;
      $("to").value = state.to;
    }
    const tz = $("tz");
    if (![...tz.options].some((o) => o.value === state.tz)) tz.append(el("option", { value: state.tz }, state.tz));
    tz.value = state.tz;
    fillCustomMetrics();
  }

  function fillControls() {
    const period = $("period");
    for (const [v, label] of V.PERIODS) period.append(el("option", { value: v }, label));
    const zones = new Set(["UTC", browserTz, state.tz]);
    for (const z of typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : []) zones.add(z);
    $("tz").append(...[...zones].sort().map((z) => el("option", { value: z }, z)));
    for (const [name, tabs] of Object.entries(V.PANELS)) {
      const list = $(`tabs-${name}`);
      if (tabs.length < 2) {
        list.hidden = true;
        continue;
      }
      for (const [dim, label] of tabs) {
        list.append(el("button", { type: "button", role: "tab", id: `tab-${name}-${dim.replace(/[^a-z_]/g, "-")}`, "aria-controls": `list-${name}`, dataset: { tab: dim } }, label));
      }
      list.addEventListener("click", (e) => {
        const b = e.target.closest("[role=tab]");
        if (b) apply({ ...state, tabs: { ...state.tabs, [name]: b.dataset.tab } });
      });
      // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
      list.addEventListener("keydown", (e) => {
        if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
        const bs = [...list.querySelectorAll("[role=tab]")];
        const i = bs.indexOf(document.activeElement);
        if (i < 0) return;
        const next = bs[(i + (e.key === "ArrowRight" ? 1 : bs.length - 1)) % bs.length];
        e.preventDefault();
        apply({ ...state, tabs: { ...state.tabs, [name]: next.dataset.tab } });
        next.focus();
      });
    }
    for (const [m, label] of V.TOP_METRICS) {
      $("stats").append(
        el("button", { type: "button", class: "stat", id: `stat-${m}`, "aria-pressed": "false", dataset: { metric: m } },
          el("span", { class: "what" }, label), el("span", { class: "value" }, "–"), el("span", { class: "change" }, "")),
      );
    }
    $("stats").append(
      el("button", { type: "button", class: "stat", id: "stat-custom", hidden: "", "aria-pressed": "true", dataset: { metric: "" } },
        el("span", { class: "what" }, ""), el("span", { class: "value" }, "–"), el("span", { class: "change" }, "")),
    );
  }

  function fillCustomMetrics() {
    const sel = $("custom-metric");
    const opts = [el("option", { value: "" }, "Goals and custom metrics…")];
    const goals = new Set();
    const numbers = new Set();
    for (const m of catalog) {
      if (m.bots_only) continue;
      for (const t of m.types || []) if (t !== "pageview" && t !== "engagement") goals.add(t);
      if ((m.kind === "sum" || m.kind === "avg") && /^props\./.test(m.field || "")) numbers.add(`${m.kind}:${m.field}`);
    }
    if (V.isCustomMetric(state.metric)) numbers.add(state.metric);
    if (goals.size) opts.push(el("optgroup", { label: "Goals (filter)" }, ...[...goals].sort().map((t) => el("option", { value: "goal:" + t }, t))));
    if (numbers.size) opts.push(el("optgroup", { label: "Metrics (chart)" }, ...[...numbers].sort().map((m) => el("option", { value: m }, m))));
    sel.replaceChildren(...opts);
    sel.value = V.isCustomMetric(state.metric) ? state.metric : "";
  }

  // siteZone is the zone the Stats API answers site's queries in when
  // they name none (pulse serve --site-timezones), or "" when unknown.
  async function siteZone(site) {
    try {
      const r = await fetch(new URL("v1/stats", location.href), {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ site_id: site, metrics: ["events"], date_range: "realtime" }),
      });
      return r.ok ? (await r.json()).query?.timezone || "" : "";
    } catch {
      return "";
    }
  }

  // followSite takes the site's time zone, unless another is pinned.
  async function followSite(st) {
    const zone = tzPinned ? "" : await siteZone(st.site);
    apply(zone && zone !== st.tz ? { ...st, tz: zone } : st);
  }

  async function loadCatalog() {
    try {
      const r = await fetch(new URL("v1/metrics", location.href), { headers: { Authorization: `Bearer ${token}` } });
      if (!r.ok) throw new Error(`GET /v1/metrics: ${r.status}`);
      catalog = (await r.json()).metrics || [];
      fillCustomMetrics();
    } catch (e) {
      $("notice").textContent = String(e.message || e);
    }
  }

  function addFilter(dim, value) {
    apply({ ...state, filters: V.withFilter(state.filters, [dim, "is", value]) });
  }

  function bind() {
    $("period").addEventListener("change", (e) => {
      const period = e.target.value;
      if (period === "custom") {
        const today = V.todayIn(state.tz, Date.now());
        const from = state.from || V.addDays(today, -6);
        apply({ ...state, period, from, to: state.to || today });
      } else apply({ ...state, period });
    });
    const dates = () => {
      const from = $("from").value;
      const to = $("to").value;
      if (from && to && from <= to) apply({ ...state, period: "custom", from, to });
    };
    $("from").addEventListener("change", dates);
    $("to").addEventListener("change", dates);
    $("tz").addEventListener("change", (e) => {
      tzPinned = true;
      apply({ ...state, tz: e.target.value });
    });
    $("site").addEventListener("change", (e) => {
      const site = e.target.value.trim();
      // Filters belong to the site they were picked on.
      if (site) followSite({ ...state, site, filters: [] });
    });
    $("custom-metric").addEventListener("change", (e) => {
      const v = e.target.value;
      if (v.startsWith("goal:")) addFilter("event:goal", v.slice(5));
      else if (v) apply({ ...state, metric: v });
    });
    $("stats").addEventListener("click", (e) => {
      const b = e.target.closest("button.stat");
      if (b && b.dataset.metric) apply({ ...state, metric: b.dataset.metric });
    });
    $("filters").addEventListener("click", (e) => {
      const b = e.target.closest("button.chip");
      if (b) apply({ ...state, filters: V.withoutFilter(state.filters, [b.dataset.dim, b.dataset.op, b.dataset.value]) });
    });
    $("panels").addEventListener("click", (e) => {
      const b = e.target.closest("button.row");
      if (b) addFilter(b.dataset.dim, b.dataset.value);
    });
    addEventListener("resize", () => chart.resize());
  }

  function renderStats() {
    const cur = total(subs.current?.sub, "visitors");
    $("stat-current").dataset.value = cur ?? "";
    $("stat-current").textContent = V.format("visitors", cur);
    const groups = V.EVENT_TOP.map((m) => [m, "events"]).concat(V.VISIT_TOP.map((m) => [m, "visits"]));
    if (V.isCustomMetric(state.metric)) groups.push([state.metric, "custom"]);
    for (const [m, group] of groups) {
      const b = group === "custom" ? $("stat-custom") : $(`stat-${m}`);
      const now = subs[`top-${group}`]?.sub;
      const prev = subs[`prev-${group}`]?.sub;
      const v = total(now, m);
      const p = total(prev, m);
      const ch = V.change(v, p);
      b.dataset.value = v ?? "";
      b.dataset.prev = p ?? "";
      b.dataset.change = ch ?? "";
      b.dataset.error = now?.error || "";
      b.title = now?.error || (prev?.error ? `no comparison: ${prev.error}` : p == null ? "" : `previous period: ${V.format(m, p)}`);
      b.querySelector(".value").textContent = now?.error ? "n/a" : V.format(m, v);
      const c = b.querySelector(".change");
      c.textContent = ch == null ? "" : `${ch > 0 ? "↑" : ch < 0 ? "↓" : "="} ${Math.abs(ch)}%`;
      // A falling bounce rate is good news.
      c.className = "change " + (ch == null || ch === 0 ? "" : (ch > 0) !== (m === "bounce_rate") ? "up" : "down");
      b.setAttribute("aria-pressed", String(state.metric === m));
      if (group === "custom") {
        b.hidden = false;
        b.dataset.metric = m;
        b.querySelector(".what").textContent = m;
      }
    }
    if (!V.isCustomMetric(state.metric)) $("stat-custom").hidden = true;
  }

  function renderChart() {
    const vs = subs["chart-visitors"]?.sub;
    const ms = subs["chart-metric"]?.sub;
    const host = $("main-chart");
    const err = vs?.error || ms?.error || "";
    host.dataset.state = err ? "error" : vs?.ready && (!ms || ms.ready) ? "ready" : "loading";
    if (!vs?.ready) return;
    const labels = vs.meta.time_labels || [];
    const visitors = V.series(labels, vs.sorted());
    const values = ms?.ready ? V.series(labels, ms.sorted()) : null;
    host.dataset.metric = state.metric;
    host.dataset.dimension = V.timeDimension(state);
    host.dataset.labels = JSON.stringify(labels);
    host.dataset.visitors = JSON.stringify(visitors);
    host.dataset.values = JSON.stringify(values ?? visitors);
    const what = state.metric === "visitors" ? "" : ` and ${metricName(state.metric)}`;
    host.setAttribute("aria-label", `Chart of visitors${what} per ${V.timeDimension(state).slice(5)}` +
      (labels.length <= 31 ? `: ${labels.map((l, i) => `${l} ${visitors[i]}${values && state.metric !== "visitors" ? " / " + values[i] : ""}`).join(", ")}` : ""));
    $("chart-title").textContent = state.metric === "visitors" ? "Visitors" : `Visitors and ${metricName(state.metric)}`;
    chart.update(labels, visitors, state.metric, state.metric === "visitors" ? null : values ?? labels.map(() => 0), V.timeDimension(state));
  }

  function renderPanel(name) {
    const s = subs[`panel-${name}`]?.sub;
    const [dim, , metrics] = V.panelTab(state, name);
    const panel = $(`panel-${name}`);
    panel.dataset.dim = dim;
    panel.dataset.state = s?.error ? "error" : s?.ready ? "ready" : "loading";
    for (const t of panel.querySelectorAll("[role=tab]")) {
      const on = t.dataset.tab === dim;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
    }
    $(`head-${name}`).replaceChildren(el("span", {}, dimName(dim)), ...metrics.map((m) => el("span", { class: "num" }, metricName(m))));
    const list = $(`list-${name}`);
    const rows = s?.ready ? s.sorted().slice(0, V.PANEL_ROWS) : [];
    const max = Math.max(1, ...rows.map((r) => r.metrics[0]));
    keepFocus(list, "button.row", (b) => b.dataset.value, () => {
      const items = rows.map((r) => {
        const value = String(r.dimensions[0]);
        const nums = metrics.map((m, i) => el("span", { class: "num", dataset: { metric: m, value: String(r.metrics[i]) } }, V.format(m, r.metrics[i])));
        const bar = el("span", { class: "bar", style: `width:${((100 * r.metrics[0]) / max).toFixed(1)}%` });
        const b = el("button", { type: "button", class: "row", dataset: { dim, value }, "aria-label": `Filter by ${dimName(dim)} ${value}: ${metrics.map((m, i) => `${V.format(m, r.metrics[i])} ${metricName(m)}`).join(", ")}` },
          bar, el("span", { class: "label" }, rowLabel(dim, value)), ...nums);
        return el("li", { dataset: { value } }, b);
      });
      if (!items.length) items.push(el("li", { class: "empty" }, s?.error ? "" : s?.ready ? "No data for this range" : "Loading…"));
      list.replaceChildren(...items);
    });
  }

  function renderFilters() {
    const box = $("filters");
    keepFocus(box, "button.chip", (b) => b.dataset.dim + "\u0000" + b.dataset.value, () => {
      box.replaceChildren(
        ...state.filters.map(([dim, op, value]) =>
          el("button", { type: "button", class: "chip", dataset: { dim, op, value }, "aria-label": `Remove filter: ${dimName(dim)} ${op.replace("_", " ")} ${value}` },
            el("span", {}, `${dimName(dim)} ${op.replace("_", " ")} `), el("strong", {}, rowLabel(dim, value)), el("span", { class: "x", "aria-hidden": "true" }, " ×")),
        ),
      );
    });
    box.hidden = state.filters.length === 0;
  }

  function renderErrors() {
    for (const e of document.querySelectorAll("[data-error-for]")) {
      const names = e.dataset.errorFor.split(" ");
      const msg = names.map((n) => subs[n]?.sub.error).find(Boolean);
      e.textContent = msg ? `error: ${msg}` : "";
    }
  }

  function render() {
    renderStats();
    renderChart();
    for (const name of Object.keys(V.PANELS)) renderPanel(name);
    renderFilters();
    renderErrors();
  }

  function tick() {
    const now = Date.now();
    // The comparison of a range ending now slides with it.
    if ((state.period === "realtime" || state.period === "24h") && now - prevAt > 60e3) subscribe();
    const f = V.freshness(now, { state: client.state, openedAt: client.openedAt, lastMessageAt: client.lastMessageAt, changedAt: subs.activity?.sub.changedAt ?? null });
    const e = $("freshness");
    e.dataset.state = f.state;
    e.dataset.ms = f.ms == null ? "" : String(f.ms);
    const ago = f.ms == null ? "" : f.ms < 60e3 ? `${Math.round(f.ms / 1000)} s` : `${Math.round(f.ms / 60e3)} min`;
    e.textContent = {
      live: `live · new events ${ago} ago`,
      quiet: `no traffic${ago ? " for " + ago : ""} · connection healthy`,
      stalled: `stalled · no answer from the server for ${ago}`,
      offline: "offline · reconnecting",
    }[f.state];
  }

  fillControls();
  bind();
  client.start();
  followSite(state);
  loadCatalog();
  const frame = () => {
    if (dirty) {
      dirty = false;
      render();
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  setInterval(tick, 1000);
  tick();
}

main();
