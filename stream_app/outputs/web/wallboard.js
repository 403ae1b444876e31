// Wallboard: polls the worker's snapshot and paints one row of tiles per queue.
// Plain browser JS served as is by the worker (no build step, nothing fetched from
// outside). Tests read the tiles through data-scope / data-kpi / data-window /
// data-status and the text of their `.value` element, so keep those stable.
"use strict";

(() => {
  const POLL_MS = 1000;
  const STALE_MS = 5000;
  // A hung request would otherwise hold the single polling slot forever.
  const REQUEST_TIMEOUT_MS = 4000;
  // Rules change only when a worker restarts with another file.
  const RULES_REFRESH_MS = 60000;
  const RULES_RETRY_MS = 5000;
  const ALERTS_MS = 5000;
  // Workers without the alerts endpoint answer 404: ask again rarely, not never,
  // so a rolling upgrade shows alerts without a page reload.
  const ALERTS_MISSING_MS = 60000;
  const DEFAULT_WINDOW = "15m";
  const DASH = "\u2013";
  const MINUS = "\u2212";

  // The KPI catalogue (GET api/kpis): labels, formats, the counts behind each KPI
  // and which KPIs are the board's tiles, left to right. Nothing of it is repeated here.
  let TILES = [];
  let KPIS = {};
  const OPS = {
    "<": (v, t) => v < t, "<=": (v, t) => v <= t, ">": (v, t) => v > t, ">=": (v, t) => v >= t,
  };
  const RANK = { none: 0, ok: 1, warn: 2, breach: 3 };

  const state = {
    snapshot: null, rules: [], rulesDue: 0, alertsDue: 0, lastOk: 0, started: Date.now(),
    windowsKey: "", panels: new Map(),
  };

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

  function format(kind, value) {
    if (!isNum(value)) return DASH;
    switch (kind) {
      case "percent": return fmtSigned((value * 100).toFixed(1)) + "%";
      case "duration": return fmtDuration(value);
      case "score": return fmtSigned(value.toFixed(0));
      case "decimal": return fmtSigned(value.toFixed(2));
      default: return String(Math.round(value));
    }
  }

  // "15m" -> [15, "min"]: the window names of the worker's settings (5m, 1h, 24h, 2d)
  const UNITS = { s: [1 / 60, "s"], m: [1, "min"], h: [60, "h"], d: [1440, "d"] };
  const parseWindow = (name) => /^(\d+)([smhd])$/.exec(name);
  const windowMinutes = (name) => {
    const m = parseWindow(name);
    return m ? Number(m[1]) * UNITS[m[2]][0] : Number.MAX_SAFE_INTEGER;
  };
  const windowText = (name) => {
    const m = parseWindow(name);
    return m ? `last ${m[1]} ${UNITS[m[2]][1]}` : name;
  };

  // --- rules (mirror of Rule.applies / Rule.status in stream_app/rules.py) -----------
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

  function ruleStatus(rule, row) {
    const value = row ? row[rule.kpi] : null;
    if (!isNum(value)) return "none";
    const behind = KPIS[rule.kpi] ? KPIS[rule.kpi].samples : [];
    const samples = behind.reduce((n, f) => n + (Number(row[f]) || 0), 0);
    if (samples < (rule.min_samples || 0)) return "none";
    const op = OPS[rule.op];
    if (!op) return "none";
    if (op(value, rule.threshold)) return "breach";
    if (isNum(rule.warn) && op(value, rule.warn)) return "warn";
    return "ok";
  }

  // The worst verdict of every rule on this tile; "none" when no rule says anything.
  function tileStatus(scope, kpi, win, row) {
    let best = "none";
    for (const rule of state.rules) {
      if (rule.kpi !== kpi || rule.window !== win || !rule.scopeRe.test(scope)) continue;
      const s = ruleStatus(rule, row);
      if (RANK[s] > RANK[best]) best = s;
    }
    return best;
  }

  // --- network: one request at a time, all from the single loop in tick() -----------
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

  async function loadRules() {
    try {
      const res = await getJson("api/rules");
      if (res.ok && Array.isArray(res.body)) {
        state.rules = res.body.map((r) => ({ ...r, scopeRe: globToRegExp(String(r.scope)) }));
        state.rulesDue = Date.now() + RULES_REFRESH_MS;
        return;
      }
    } catch (_err) {
      // Retried below; tiles stay uncoloured meanwhile.
    }
    state.rulesDue = Date.now() + RULES_RETRY_MS;
  }

  async function loadCatalogue() {
    try {
      const res = await getJson("api/kpis");
      if (res.ok && Array.isArray(res.body)) {
        KPIS = Object.fromEntries(res.body.map((k) => [k.name, k]));
        TILES = res.body.filter((k) => k.board !== null)
          .sort((a, b) => a.board - b.board)
          .map((k) => ({ kpi: k.name, label: k.label, live: k.row === "now", fmt: k.format }));
      }
    } catch (_err) {
      // Retried at the next tick; the board waits for it.
    }
  }

  async function loadSnapshot() {
    try {
      const res = await getJson("api/snapshot");
      if (res.ok && res.body && Array.isArray(res.body.rows)) {
        state.snapshot = res.body;
        state.lastOk = Date.now();
      }
    } catch (_err) {
      // The stale badge tells the room; the last good numbers stay up.
    }
  }

  async function loadAlerts() {
    const res = await getJson("api/alerts").catch(() => null);
    if (res && res.status === 404) {
      state.alertsDue = Date.now() + ALERTS_MISSING_MS;
      renderAlerts([]);
      return;
    }
    state.alertsDue = Date.now() + ALERTS_MS;
    if (res && res.ok) {
      const list = Array.isArray(res.body) ? res.body : (res.body && res.body.alerts) || [];
      renderAlerts(Array.isArray(list) ? list : []);
    }
  }

  async function tick() {
    const started = Date.now();
    try {
      if (!TILES.length) await loadCatalogue();
      if (started >= state.rulesDue) await loadRules();
      await loadSnapshot();
      render();
      if (started >= state.alertsDue) await loadAlerts();
    } finally {
      setTimeout(tick, Math.max(0, POLL_MS - (Date.now() - started)));
    }
  }

  // --- window selection (remembered in the URL hash: #w=15m) -------------------------
  function hashWindow() {
    return new URLSearchParams(location.hash.replace(/^#/, "")).get("w");
  }

  function availableWindows(snap) {
    const seen = new Set();
    for (const row of snap.rows) if (row.window !== "now") seen.add(row.window);
    return [...seen].sort((a, b) => windowMinutes(a) - windowMinutes(b));
  }

  function selectedWindow(windows) {
    const wanted = hashWindow();
    if (wanted && windows.includes(wanted)) return wanted;
    if (windows.includes(DEFAULT_WINDOW)) return DEFAULT_WINDOW;
    return windows[0] || DEFAULT_WINDOW;
  }

  function chooseWindow(name) {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    params.set("w", name);
    // replaceState: switching windows should not fill the back button's history.
    history.replaceState(null, "", `#${params.toString()}`);
    render();
  }

  function renderWindowButtons(windows, selected) {
    const nav = $("windows");
    const key = windows.join(",");
    if (key !== state.windowsKey) {
      state.windowsKey = key;
      nav.replaceChildren(...windows.map((w) => {
        const b = el("button", "", w);
        b.type = "button";
        b.dataset.choice = w;
        b.addEventListener("click", () => chooseWindow(w));
        return b;
      }));
    }
    for (const b of nav.children) b.setAttribute("aria-pressed", String(b.dataset.choice === selected));
    $("window-label").textContent = windowText(selected);
    $("window-label").dataset.window = selected;
  }

  // --- board ---------------------------------------------------------------------------
  function renderColumnHeads(selected) {
    const heads = $("colheads");
    if (!heads.children.length) {
      heads.append(el("div", "colhead scope-head", "Queue"), ...TILES.map((t) => {
        const h = el("div", "colhead");
        h.dataset.kpi = t.kpi;
        h.append(el("span", "", t.label), el("small"));
        return h;
      }));
    }
    TILES.forEach((t, i) => {
      heads.children[i + 1].querySelector("small").textContent = t.live ? "now" : selected;
    });
  }

  function makePanel(scope) {
    const panel = el("section", scope === "all" ? "panel total" : "panel");
    panel.dataset.scope = scope;
    panel.append(el("h2", "scope", scope === "all" ? "All queues" : scope.slice("queue:".length)));
    const tiles = TILES.map((t) => {
      const tile = el("div", "tile");
      tile.dataset.scope = scope;
      tile.dataset.kpi = t.kpi;
      tile.dataset.status = "none";
      const value = el("span", "value", DASH);
      tile.append(value);
      panel.append(tile);
      return { tile, value, spec: t };
    });
    return { panel, tiles };
  }

  // The text stays exactly the formatted value; only the "%" is drawn smaller.
  function showValue(node, text) {
    node.classList.toggle("long", text.length > 6);
    if (!text.endsWith("%")) {
      node.textContent = text;
      return;
    }
    node.replaceChildren(text.slice(0, -1), el("span", "unit", "%"));
  }

  function boardScopes(snap) {
    const queues = new Set();
    for (const row of snap.rows) if (row.scope.startsWith("queue:")) queues.add(row.scope);
    return ["all", ...[...queues].sort((a, b) => a.localeCompare(b))];
  }

  function render() {
    const snap = state.snapshot;
    if (!snap || !TILES.length) return;
    const windows = availableWindows(snap);
    const selected = selectedWindow(windows);
    renderWindowButtons(windows, selected);
    renderColumnHeads(selected);
    $("loading").hidden = true;

    const rows = new Map();
    for (const row of snap.rows) rows.set(`${row.scope}|${row.window}`, row);
    const scopes = boardScopes(snap);
    for (const [scope, p] of state.panels) {
      if (!scopes.includes(scope)) {
        p.panel.remove();
        state.panels.delete(scope);
      }
    }
    const board = $("board");
    const order = [...board.querySelectorAll(":scope > .panel")].map((n) => n.dataset.scope);
    const reorder = order.join("\n") !== scopes.join("\n");
    for (const scope of scopes) {
      let p = state.panels.get(scope);
      if (!p) {
        p = makePanel(scope);
        state.panels.set(scope, p);
      }
      // append moves an existing node; only when a queue came or went, so no churn
      if (reorder) board.append(p.panel);
      for (const { tile, value, spec } of p.tiles) {
        const win = spec.live ? "now" : selected;
        const row = rows.get(`${scope}|${win}`);
        const v = row ? row[spec.kpi] : null;
        const text = format(spec.fmt, v);
        if (value.textContent !== text) showValue(value, text);
        tile.dataset.window = win;
        tile.dataset.status = tileStatus(scope, spec.kpi, win, row);
        tile.title = `${spec.label} (${win})`;
      }
    }
    renderFooter(snap);
  }

  function renderFooter(snap) {
    const asOf = $("as-of");
    const t = new Date(snap.as_of);
    asOf.dataset.asOf = snap.as_of;
    asOf.textContent = Number.isNaN(t.getTime()) ? `as of ${snap.as_of}`
      : `as of ${t.toLocaleTimeString([], { hour12: false })}`;
    asOf.title = snap.as_of;
    const rejected = snap.rejected || {};
    const total = Object.values(rejected).reduce((n, v) => n + (Number(v) || 0), 0);
    $("rejected").dataset.value = String(total);
    $("rejected").textContent = `rejected ${total}`;
    $("rejected").title = Object.entries(rejected).map(([k, v]) => `${k}: ${v}`).join("\n")
      || "no rejected events";
    $("duplicates").dataset.value = String(snap.duplicates || 0);
    $("duplicates").textContent = `duplicates ${snap.duplicates || 0}`;
  }

  // --- SLA alerts (GET api/alerts: the firing alerts, most severe and oldest first) -----
  // Each is {rule, kpi, window, scope, op, threshold, severity, since, value, current?}.
  function kpiFormat(kpi) {
    const k = KPIS[kpi];
    if (k) return [k.label, k.format];
    return [String(kpi || "").replace(/_/g, " "), "count"];
  }

  function alertValue(kind, value) {
    return kind === "decimal" && isNum(value) ? fmtSigned(value.toFixed(1)) : format(kind, value);
  }

  function alertSince(iso) {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? "" : t.toLocaleTimeString([], {
      hour12: false, hour: "2-digit", minute: "2-digit",
    });
  }

  function renderAlerts(list) {
    const section = $("alerts");
    if (!section) return;
    section.replaceChildren(...list.map((a) => {
      const [label, kind] = kpiFormat(a.kpi);
      const item = el("div", "alert");
      item.dataset.severity = String(a.severity || "warning");
      item.dataset.rule = String(a.rule || a.name || "");
      item.dataset.scope = String(a.scope || "");
      const scope = String(a.scope || "");
      const where = scope === "all" ? "All queues" : scope.replace(/^[a-z]+:/, "");
      const value = isNum(a.current) ? a.current : a.value;
      const limit = isNum(a.threshold) ? ` ${a.op || ""} ${alertValue(kind, a.threshold)}` : "";
      const since = alertSince(a.since);
      item.append(
        el("span", "alert-scope", where),
        el("span", "alert-kpi", label + (a.window && a.window !== "now" ? ` ${a.window}` : "")),
        el("span", "alert-value", alertValue(kind, value)),
        el("span", "alert-limit", limit.trim()),
      );
      if (since) item.append(el("span", "alert-since", `since ${since}`));
      item.title = `${a.rule || ""} (${a.severity || ""})`;
      return item;
    }));
  }

  function renderClockAndStale() {
    $("clock").textContent = new Date().toLocaleTimeString([], {
      hour12: false, hour: "2-digit", minute: "2-digit",
    });
    const since = state.lastOk || state.started;
    const age = Date.now() - since;
    const stale = age > STALE_MS;
    const badge = $("stale");
    badge.hidden = !stale;
    badge.textContent = state.lastOk ? `stale ${Math.floor(age / 1000)} s` : "no data";
    document.body.classList.toggle("is-stale", stale);
  }

  window.addEventListener("hashchange", render);
  setInterval(renderClockAndStale, 500);
  renderClockAndStale();
  tick();
})();
