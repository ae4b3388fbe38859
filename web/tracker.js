/* Pulse tracker; see web/README.md. Events stay queued in localStorage until accepted. */
// The sections between the comments <NAME> and </NAME> are the extensions,
// served in /tracker.NAME.NAME.js (web/variant.go): the default /tracker.js
// has none of them. A section may name several extensions (a|b): it is kept
// when any is on. Pulse serves this file without its indentation and
// whole-line comments.
(function (w, d) {
  var n = navigator, L = location, s = d.currentScript || d.querySelector("script[data-site]"),
    site = s && s.getAttribute("data-site"), ep, ls, mem = [], fly = {}, busy, timer, wait = 0, last, uid,
    // A developer's own visits are not traffic, as in Plausible; the demo
    // page and tests opt in.
    no = s && (/^localhost$|^127(\.[0-9]+){0,2}\.[0-9]+$|^\[::1?\]$/.test(L.hostname) || L.protocol == "file:") && !s.hasAttribute("data-allow-localhost"),
    KQ = "pulse_q", MAX = 200, BATCH = 20, WIN = 6e5;
  if (!site) return;
  ep = s.getAttribute("data-endpoint") || new URL("/v1/collect", s.src).href;
  try { ls = w.localStorage; ls.getItem(KQ) } catch (e) { ls = null }

  function get(k) { try { return ls.getItem(k) } catch (e) {} }
  function set(k, v) { try { ls.setItem(k, v) } catch (e) {} }
  function off() { return no || n.doNotTrack == "1" || w.doNotTrack == "1" || get("pulse_optout") == "1" }
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

  /*<exclusions>*/
  // Plausible's wildcards: ** is anything, * anything but a slash.
  function on(attr) {
    var v = s.getAttribute(attr), p = L.pathname/*<hash>*/ + L.hash/*</hash>*/;
    return v && v.split(",").some(function (x) {
      return RegExp("^" + x.trim().replace(/\*\*/g, ".*").replace(/([^.])\*/g, "$1[^\\s/]*") + "/?$").test(p);
    });
  }
  /*</exclusions>*/
  function track(type, props) {
    if (off()) return;
    /*<exclusions>*/
    if (type == "pageview" && (s.getAttribute("data-include") && !on("data-include") || on("data-exclude"))) return;
    /*</exclusions>*/
    /*<404>*/
    if (type == "404" && !props) props = { path: L.pathname };
    /*</404>*/
    if (!uid) { uid = get("pulse_uid") || rid(); set("pulse_uid", uid) }
    var e = { id: rid(), site: site, type: type, ts: Date.now(), url: L.href, uid: uid }, a = load();
    if (d.referrer) e.ref = d.referrer;
    if (props) e.props = props;
    /*<hash>*/
    e.hash = true;
    /*</hash>*/
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

  // A new fragment is a new page only for hash routing: elsewhere it is an
  // anchor on the same page.
  function page() {
    var u = L.href.split("#")[0]/*<hash>*/ + L.hash/*</hash>*/;
    if (u != last) { last = u; track("pageview") }
  }
  ["pushState", "replaceState"].forEach(function (m) {
    var f = history[m];
    history[m] = function () { var r = f.apply(this, arguments); page(); return r };
  });
  w.addEventListener("popstate", page);
  /*<hash>*/
  w.addEventListener("hashchange", page);
  /*</hash>*/
  w.addEventListener("pagehide", hide);
  w.addEventListener("online", send);
  d.addEventListener("visibilitychange", function () { d.visibilityState == "hidden" && hide() });
  d.addEventListener("click", function (e) {
    var t = e.target, el = t && t.closest && t.closest("[data-pulse-click]");
    if (el) track("click", { target: el.getAttribute("data-pulse-click") });
  }, true);
  /*<outbound-links|file-downloads>*/
  // The event is queued before the browser follows the link, and the
  // pagehide flush sends it: the link is never held up.
  /*<file-downloads>*/
  var ft = s.getAttribute("file-types"), at = s.getAttribute("add-file-types");
  ft = (ft || "pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg" + (at ? "," + at : "")).split(",");
  /*</file-downloads>*/
  function link(e) {
    var a = e.target && e.target.closest && e.target.closest("a[href]"), u;
    if (!a || typeof a.href != "string" || e.type == "auxclick" && e.button != 1) return;
    /*<outbound-links>*/
    if (a.host && a.host != L.host) return track("Outbound Link: Click", { url: a.href });
    /*</outbound-links>*/
    /*<file-downloads>*/
    u = a.href.split(/[?#]/)[0];
    if (ft.indexOf(u.split(".").pop().toLowerCase()) >= 0) track("File Download", { url: u });
    /*</file-downloads>*/
  }
  d.addEventListener("click", link, true);
  d.addEventListener("auxclick", link, true);
  /*</outbound-links|file-downloads>*/

  var q = w.pulse && w.pulse.q || [], api = function (type, props) { track(type, props) };
  api.optOut = function () { set("pulse_optout", "1"); store([]) };
  api.optIn = function () { try { ls.removeItem("pulse_optout") } catch (e) {} };
  w.pulse = api;
  page();
  /*<404>*/
  if (s.hasAttribute("data-404")) track("404");
  /*</404>*/
  q.forEach(function (a) { track(a[0], a[1]) });
  if (load().length) later(1e3);
})(window, document);
