// Shared by the wallboard's pages (queues, agents, products): number formats, the one
// polling loop, JSON fetches with a timeout, the target rules' colours, the clock and
// the stale badge. One copy, so a value reads and colours the same on every page and
// the tests mirror one formatter.
// Plain browser JS served as is (no build step, no modules: file:// and old kiosk
// browsers still load it); it defines window.KpiPage and nothing else.
"use strict";

window.KpiPage = (() => {
  const POLL_MS = 1000;
  const STALE_MS = 5000;
  // A hung request would otherwise hold the single polling slot forever.
  const REQUEST_TIMEOUT_MS = 4000;
  // A download (today's intervals) is larger; it still must not hold the loop forever.
  const DOWNLOAD_TIMEOUT_MS = 30000;
  const DASH = "\u2013";
  const MINUS = "\u2212";
  // Rules change only when a worker restarts with another file; so do definitions.
  const RULES_REFRESH_MS = 60000;
  const RULES_RETRY_MS = 5000;
  // Live ticket counts that are bad as soon as they are above zero, whatever the rules
  // file says: a breached ticket is red, one close to its target amber. The rules can
  // only make a cell worse than this, never hide it.
  const ALARMS = { tickets_sla_breached: "breach", tickets_sla_at_risk: "warn" };
  const OPS = {
    "<": (v, t) => v < t, "<=": (v, t) => v <= t, ">": (v, t) => v > t, ">=": (v, t) => v >= t,
  };
  const RANK = { none: 0, ok: 1, warn: 2, breach: 3 };

  const $ = (id) => document.getElementById(id);
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);

  // --- formatting -------------------------------------------------------------------
  const pad2 = (n) => String(n).padStart(2, "0");

  function fmtDuration(seconds) {
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h > 0 ? `${h}:${pad2(m)}:${pad2(s % 60)}` : `${m}:${pad2(s % 60)}`;
  }

  function fmtSigned(text) {
    // toFixed keeps the sign of tiny negatives ("-0"), which reads as a glitch.
    if (/^-0(\.0+)?$/.test(text)) return text.slice(1);
    return text.replace(/^-/, MINUS);
  }

  // kind: the catalogue's format of the KPI (GET api/kpis, field "format").
  function format(kind, value) {
    if (!isNum(value)) return DASH;
    switch (kind) {
      case "percent": return fmtSigned((value * 100).toFixed(1)) + "%";
      case "duration": return fmtDuration(value);
      case "score": return fmtSigned(value.toFixed(0));
      case "decimal":
      case "money": return fmtSigned(value.toFixed(2));
      default: return String(Math.round(value));
    }
  }

  // A target in seconds as people say it: "30 s", "15 min", "1 h", "1 h 30 min".
  function fmtTarget(seconds) {
    if (!isNum(seconds)) return DASH;
    const s = Math.round(seconds);
    if (s < 120 || s % 60 !== 0) return `${s} s`;
    const m = s / 60;
    if (m % 60 === 0) return `${m / 60} h`;
    return m < 120 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  // "15m" -> "last 15 min"; names without a length ("today") stay as they are.
  const UNITS = { s: "s", m: "min", h: "h", d: "d" };
  function windowText(name) {
    const m = /^(\d+)([smhd])$/.exec(name);
    return m ? `last ${m[1]} ${UNITS[m[2]]}` : name;
  }

  // --- network: every page makes one request at a time, from its own loop ------------
  async function getJson(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(path, { cache: "no-store", signal: ctl.signal });
      const body = res.ok ? await res.json() : null;
      return { status: res.status, ok: res.ok, body };
    } finally {
      clearTimeout(timer);
    }
  }

  // The KPI catalogue (GET api/kpis) by name: labels and formats are never repeated in
  // the pages. null until the worker answered.
  async function loadCatalogue() {
    try {
      const res = await getJson("api/kpis");
      if (res.ok && Array.isArray(res.body)) return Object.fromEntries(res.body.map((k) => [k.name, k]));
    } catch (_err) {
      // Asked again at the next tick; the page waits for it.
    }
    return null;
  }

  // Work a person asked for (a download), run by the polling loop between two polls,
  // so the page still makes one request at a time.
  const queued = [];

  // Runs step() about every POLL_MS, never two at once: the next one is scheduled only
  // when this one has finished, so a slow worker gets fewer requests, not a queue.
  function poll(step) {
    const run = async () => {
      const started = Date.now();
      try {
        while (queued.length) await queued.shift()();
        await step();
      } catch (err) {
        // A bug in one tick must not stop the page; the stale badge shows it.
        console.error(err);
      } finally {
        setTimeout(run, Math.max(0, POLL_MS - (Date.now() - started)));
      }
    };
    run();
  }

  // A download link fetched like the API (so auth.js adds the API token a plain link
  // would go without) and saved under the worker's file name.
  function downloadLink(a) {
    if (!a) return;
    a.addEventListener("click", (ev) => {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
      ev.preventDefault();
      a.setAttribute("aria-busy", "true");
      queued.push(async () => {
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), DOWNLOAD_TIMEOUT_MS);
        try {
          const res = await fetch(a.href, { cache: "no-store", signal: ctl.signal });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const blob = await res.blob();
          const named = /filename="?([^";]+)"?/.exec(res.headers.get("Content-Disposition") || "");
          const url = URL.createObjectURL(blob);
          const save = el("a");
          save.href = url;
          save.download = named ? named[1] : a.getAttribute("download") || "download";
          document.body.append(save);
          save.click();
          save.remove();
          setTimeout(() => URL.revokeObjectURL(url), 60000);
          delete a.dataset.error;
          a.removeAttribute("title");
        } catch (err) {
          a.dataset.error = String(err && err.message || err);
          a.title = `download failed: ${a.dataset.error}`;
        } finally {
          clearTimeout(timer);
          a.removeAttribute("aria-busy");
        }
      });
    });
  }

  // The clock and the stale badge (#clock, #stale): lastOk() is when the page last got
  // fresh data. Old numbers stay up, dimmed, rather than vanishing from the wall.
  function watchStale(lastOk) {
    const started = Date.now();
    const paint = () => {
      const clock = $("clock");
      if (clock) {
        clock.textContent = new Date().toLocaleTimeString([], {
          hour12: false, hour: "2-digit", minute: "2-digit",
        });
      }
      const ok = lastOk();
      const age = Date.now() - (ok || started);
      const stale = age > STALE_MS;
      const badge = $("stale");
      if (badge) {
        badge.hidden = !stale;
        badge.textContent = ok ? `stale ${Math.floor(age / 1000)} s` : "no data";
      }
      document.body.classList.toggle("is-stale", stale);
    };
    setInterval(paint, 500);
    paint();
  }

  // --- rules (mirror of Rule.applies / Rule.status in stream_app/outputs/rules.py) ------
  // Python's fnmatch.fnmatchcase: * ? [seq] [!seq], whole string, case-sensitive.
  function globToRegExp(glob) {
    let re = "";
    for (let i = 0; i < glob.length; i++) {
      const c = glob[i];
      if (c === "*") { re += "[\\s\\S]*"; continue; }
      if (c === "?") { re += "[\\s\\S]"; continue; }
      if (c === "[") {
        let j = i + 1;
        if (glob[j] === "!") j++;
        if (glob[j] === "]") j++;
        while (j < glob.length && glob[j] !== "]") j++;
        if (j < glob.length) {
          let set = glob.slice(i + 1, j);
          const negate = set[0] === "!";
          if (negate) set = set.slice(1);
          // a leading "]" is literal in fnmatch; in a JS class it must be escaped
          set = set.replace(/[\\\]^]/g, "\\$&");
          re += `[${negate ? "^" : ""}${set}]`;
          i = j;
          continue;
        }
      }
      re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
    return new RegExp(`^${re}$`);
  }

  // GET api/rules, each with its scope glob compiled; null when the worker did not answer.
  async function loadRules() {
    try {
      const res = await getJson("api/rules");
      if (res.ok && Array.isArray(res.body)) {
        return res.body.map((r) => ({ ...r, scopeRe: globToRegExp(String(r.scope)) }));
      }
    } catch (_err) {
      // The caller asks again later.
    }
    return null;
  }

  function ruleStatus(rule, kpis, row) {
    const value = row ? row[rule.kpi] : null;
    if (!isNum(value)) return "none";
    const behind = kpis[rule.kpi] ? kpis[rule.kpi].samples : [];
    const samples = behind.reduce((n, f) => n + (Number(row[f]) || 0), 0);
    if (samples < (rule.min_samples || 0)) return "none";
    const op = OPS[rule.op];
    if (!op) return "none";
    if (op(value, rule.threshold)) return "breach";
    if (isNum(rule.warn) && op(value, rule.warn)) return "warn";
    return "ok";
  }

  // The worst verdict of every rule on this value (and of its alarm): "none" when
  // nothing says anything, else "ok", "warn" or "breach" (a cell's data-status).
  function cellStatus(rules, kpis, scope, kpi, win, row) {
    let best = "none";
    const value = row ? row[kpi] : null;
    if (ALARMS[kpi] && isNum(value) && value > 0) best = ALARMS[kpi];
    for (const rule of rules) {
      if (rule.kpi !== kpi || rule.window !== win || !rule.scopeRe.test(scope)) continue;
      const s = ruleStatus(rule, kpis, row);
      if (RANK[s] > RANK[best]) best = s;
    }
    return best;
  }

  // Snapshot rows by "scope|window".
  function rowIndex(snap) {
    const rows = new Map();
    for (const row of snap.rows) rows.set(`${row.scope}|${row.window}`, row);
    return rows;
  }

  function showAsOf(node, iso) {
    if (!node) return;
    const t = new Date(iso);
    node.dataset.asOf = iso;
    node.title = iso;
    node.textContent = Number.isNaN(t.getTime()) ? `as of ${iso}`
      : `as of ${t.toLocaleTimeString([], { hour12: false })}`;
  }

  return {
    POLL_MS, DASH, MINUS, RULES_REFRESH_MS, RULES_RETRY_MS, $, el, isNum, format, fmtSigned,
    fmtDuration, fmtTarget, windowText, getJson, loadCatalogue, loadRules, cellStatus, poll,
    downloadLink, watchStale, rowIndex, showAsOf,
  };
})();
