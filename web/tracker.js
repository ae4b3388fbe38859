/* Pulse tracker; see web/README.md. Events stay queued in localStorage until accepted. */
(function (w, d) {
  var n = navigator, L = location, s = d.currentScript || d.querySelector("script[data-site]"),
    site = s && s.getAttribute("data-site"), ep, ls, mem = [], fly = {}, busy, timer, wait = 0, last, uid,
    KQ = "pulse_q", MAX = 200, BATCH = 20, WIN = 6e5;
  if (!site) return;
  ep = s.getAttribute("data-endpoint") || new URL("/v1/collect", s.src).href;
  try { ls = w.localStorage; ls.getItem(KQ) } catch (e) { ls = null }

  function get(k) { try { return ls.getItem(k) } catch (e) {} }
  function set(k, v) { try { ls.setItem(k, v) } catch (e) {} }
  function off() { return n.doNotTrack == "1" || w.doNotTrack == "1" || get("pulse_optout") == "1" }
  function rid() {
    var c = w.crypto, a = new Uint8Array(16), h = "", i;
    if (c && c.randomUUID) return c.randomUUID();
    if (c && c.getRandomValues) c.getRandomValues(a); else for (i = 0; i < 16; i++) a[i] = Math.random() * 256;
    for (i = 0; i < 16; i++) h += (a[i] + 256).toString(16).slice(1);
    return h;
  }
  // Tabs share the queue; ids make a double send harmless while the server
  // remembers them, so what may have reached it longer ago is dropped.
  function load() {
    var v, t = Date.now() - Math.min(WIN, +get("pulse_w") || WIN) * .8;
    try { v = JSON.parse(ls.getItem(KQ)) } catch (e) {}
    return (Array.isArray(v) ? v : mem).filter(function (e) { return e.ts > t });
  }
  function store(a) { mem = a; set(KQ, JSON.stringify(a)) }
  function pending() { return load().filter(function (e) { return !fly[e.id] }) }
  function drop(b) {
    var x = {};
    b.forEach(function (e) { x[e.id] = 1 });
    store(load().filter(function (e) { return !x[e.id] }));
  }
  function later(ms) { timer = timer || setTimeout(send, ms) }

  function track(type, props) {
    if (off()) return;
    if (!uid) { uid = get("pulse_uid") || rid(); set("pulse_uid", uid) }
    var e = { id: rid(), site: site, type: type, ts: Date.now(), url: L.href, uid: uid }, a = load();
    if (d.referrer) e.ref = d.referrer;
    if (props) e.props = props;
    a.push(e);
    store(a.slice(-MAX));
    if (!wait && pending().length >= BATCH) send(); else later(1e3);
  }

  function send() {
    clearTimeout(timer);
    timer = 0;
    var b = pending().slice(0, BATCH);
    if (busy || !b.length || off() || !w.fetch) return;
    busy = 1;
    b.forEach(function (e) { fly[e.id] = 1 });
    fetch(ep, { method: "POST", body: JSON.stringify(b), keepalive: true }).then(function (r) {
      var h = +r.headers.get("Pulse-Dedup-Window");
      h > 0 && set("pulse_w", h * 1e3);
      if (r.status == 429 || r.status > 499) throw r;
      // Other statuses (400, 413) can never succeed: drop.
      drop(b);
      wait = 0;
    }).catch(function (r) {
      var ra = r && r.headers && +r.headers.get("Retry-After");
      wait = Math.min(wait ? wait * 2 : 1e3, 6e4);
      return ra > 0 && ra * 1e3 > wait && (wait = ra * 1e3);
    }).then(function () {
      busy = 0;
      fly = {};
      if (wait) later(wait); else if (pending().length) later(1e3);
    });
  }

  // Hand what is not in flight to the browser, which sends it even after
  // the page is gone. While backing off, keep events for the next load.
  function hide() {
    var b = pending(), i;
    if (wait || off()) return;
    for (i = 0; i < b.length; i += BATCH) leave(b.slice(i, i + BATCH));
  }
  function leave(c) {
    var j = JSON.stringify(c), back = function () { store(load().concat(c)) };
    drop(c);
    if (n.sendBeacon && n.sendBeacon(ep, new Blob([j], { type: "text/plain" }))) return;
    if (!w.fetch) return back();
    fetch(ep, { method: "POST", keepalive: true, body: j }).then(function (r) {
      if (r.status == 429 || r.status > 499) throw r;
    }).catch(back);
  }

  function page() {
    if (L.href != last) { last = L.href; track("pageview") }
  }
  ["pushState", "replaceState"].forEach(function (m) {
    var f = history[m];
    history[m] = function () { var r = f.apply(this, arguments); page(); return r };
  });
  w.addEventListener("popstate", page);
  w.addEventListener("pagehide", hide);
  w.addEventListener("online", send);
  d.addEventListener("visibilitychange", function () { d.visibilityState == "hidden" && hide() });
  d.addEventListener("click", function (e) {
    var t = e.target, el = t && t.closest && t.closest("[data-pulse-click]");
    if (el) track("click", { target: el.getAttribute("data-pulse-click") });
  }, true);

  var q = w.pulse && w.pulse.q || [], api = function (type, props) { track(type, props) };
  api.optOut = function () { set("pulse_optout", "1"); store([]) };
  api.optIn = function () { try { ls.removeItem("pulse_optout") } catch (e) {} };
  w.pulse = api;
  page();
  q.forEach(function (a) { track(a[0], a[1]) });
  if (load().length) later(1e3);
})(window, document);
