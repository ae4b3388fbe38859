// label.mjs writes the uaparse fixture (../agents.jsonl) to stdout: real
// User-Agent strings from three npm packages, each labelled with the
// browser, OS and device class that ua-parser-js (an independent parser,
// MIT) gives it, in Plausible's names. Run once; its output is committed.
//
//   user-agents 2.1.198 (BSD-2-Clause, Intoli): User-Agents seen on real
//     sites, with the device category Google Analytics gave the visit
//     (kept as ga_device: a second, parser-free label for the device).
//   top-user-agents 2.1.138 (MIT, microlink.io): the 100 most common.
//   crawler-user-agents 1.60.0 (MIT, monperrus): crawler examples; one
//     example of every third pattern, all labelled bot.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const UAParser = require("ua-parser-js");
const read = (p) => JSON.parse(readFileSync(new URL(p, import.meta.url)));

// ua-parser-js names to the names Plausible shows (its UAInspector names
// after Plausible's own renames: mobile variants fold into the browser,
// in-app browsers are "Mobile App").
const browserNames = {
  "Mobile Safari": "Safari", "Samsung Internet": "Samsung Browser", "Mobile Chrome": "Chrome", "Mobile Firefox": "Firefox",
  Edge: "Microsoft Edge", IE: "Internet Explorer", IEMobile: "Internet Explorer",
  "Opera Mini": "Opera", "Opera Mobi": "Opera", "Opera Touch": "Opera", "Opera GX": "Opera",
  Yandex: "Yandex Browser", Silk: "Mobile Silk", "Chrome Headless": "Headless Chrome",
  "Chrome WebView": "Mobile App", Facebook: "Mobile App", Instagram: "Mobile App",
  GSA: "Mobile App", Line: "Mobile App", WeChat: "Mobile App", TikTok: "Mobile App",
  Snapchat: "Mobile App", KAKAOTALK: "Mobile App", Pinterest: "Mobile App", Twitter: "Mobile App",
};
const osNames = {
  "Mac OS": "Mac", "Chromium OS": "Chrome OS", Linux: "GNU/Linux", Ubuntu: "GNU/Linux",
  Fedora: "GNU/Linux", Debian: "GNU/Linux", Arch: "GNU/Linux", Mint: "GNU/Linux",
  "Linux Mint": "GNU/Linux", openSUSE: "GNU/Linux", CentOS: "GNU/Linux", Gentoo: "GNU/Linux",
};
const deviceNames = { mobile: "mobile", tablet: "tablet", smarttv: "tv", console: "console", wearable: "mobile", embedded: "unknown" };

const majorMinor = (v) => (v ? v.split(".").slice(0, 2).join(".") : "");

function label(ua, src, extra) {
  const r = UAParser(ua);
  const b = r.browser.name || "";
  const o = r.os.name || "";
  const browser = browserNames[b] ?? b;
  return {
    ua, src, ...extra,
    browser,
    // Plausible shows no version for an app's web view.
    browser_version: browser === "Mobile App" ? "" : r.browser.major || "",
    os: osNames[o] ?? o,
    os_version: majorMinor(r.os.version),
    device: r.device.type ? deviceNames[r.device.type] ?? r.device.type : "desktop",
  };
}

const out = [];
const seen = new Set();

// The device category Google Analytics saw most (by weight) for each string.
const byUA = new Map();
for (const x of read("./node_modules/user-agents/dist/user-agents.json")) {
  const m = byUA.get(x.userAgent) ?? new Map();
  m.set(x.deviceCategory, (m.get(x.deviceCategory) ?? 0) + x.weight);
  byUA.set(x.userAgent, m);
}
for (const [ua, m] of [...byUA].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
  const ga = [...m].sort((a, b) => b[1] - a[1])[0][0];
  seen.add(ua);
  out.push(label(ua, "user-agents", { ga_device: ga, bot: false }));
}
for (const ua of read("./node_modules/top-user-agents/src/index.json")) {
  if (seen.has(ua)) continue;
  seen.add(ua);
  out.push(label(ua, "top-user-agents", { bot: false }));
}
const crawlers = read("./node_modules/crawler-user-agents/crawler-user-agents.json").filter((c) => c.instances?.length);
crawlers.forEach((c, i) => {
  const ua = c.instances[0];
  if (i % 3 !== 0 || seen.has(ua)) return;
  seen.add(ua);
  out.push({ ...label(ua, "crawler-user-agents", { bot: true }), pattern: c.pattern });
});
for (const x of out) process.stdout.write(JSON.stringify(x) + "\n");
