// Wallboard: polls the worker's snapshot and paints one row of tiles per queue.
// Plain browser JS served as is by the worker (no build step, nothing fetched from
// outside); formats, fetches, the rules' colours and the stale badge are common.js's.
// Tests read the tiles through data-scope / data-kpi / data-window / data-status and
// the text of their `.value` element, so keep those stable.
"use strict";

(() => {
  const K = window.KpiPage;
  const { $, el, isNum, format, DASH } = K;
  const ALERTS_MS = 5000;
  // Workers without the alerts endpoint answer 404: ask again rarely, not never,
  // so a rolling upgrade shows alerts without a page reload.
  const ALERTS_MISSING_MS = 60000;
  const DEFAULT_WINDOW = "15m";
  // The center's own figures in the header (the `all` row of the selected window):
  // cost per contact exists only there, and repeats are a center-wide habit.
  const CENTER_FIGURES = ["repeat_contact_rate", "cost_per_contact"];
  // Count tiles hold two or three digits: they get narrower columns than times and rates.
  const NARROW = 0.85;

  // The KPI catalogue (GET api/kpis): labels, formats, the counts behind each KPI
  // and which KPIs are the board's tiles, left to right. Nothing of it is repeated here.
  let TILES = [];
  let KPIS = {};

  const state = {
    snapshot: null, rules: [], rulesDue: 0, alertsDue: 0, lastOk: 0,
    definitions: null, definitionsDue: 0,
    windowsKey: "", panels: new Map(), figures: new Map(),
  };

  const tileStatus = (scope, kpi, win, row) => K.cellStatus(state.rules, KPIS, scope, kpi, win, row);

  // --- service-level targets (mirror of Definitions.threshold_for, contract §6.1) ------
  function thresholdFor(defs, queue, channel) {
    const t = defs.thresholds || {};
    for (const key of [`${queue}/${channel}`, queue, `*/${channel}`]) {
      if (isNum(t[key])) return t[key];
    }
    return defs.threshold_seconds;
  }

  // "SL target 30 s", and the channels of this queue that are counted against another
  // threshold ("chat 60 s"), from the definitions' "<queue>/<channel>" and "*/<channel>".
  function queueTarget(defs, queue) {
    const t = defs.thresholds || {};
    const base = isNum(t[queue]) ? t[queue] : defs.threshold_seconds;
    const channels = new Set();
    for (const key of Object.keys(t)) {
      const slash = key.lastIndexOf("/");
      if (slash > 0) channels.add(key.slice(slash + 1));
    }
    const overrides = [...channels].sort()
      .map((c) => [c, thresholdFor(defs, queue, c)])
      .filter(([, v]) => v !== base);
    return { base, overrides };
  }

  function renderTarget(node, scope) {
    const defs = state.definitions;
    if (!defs) return;
    let text;
    if (scope === "all") {
      const varies = Object.keys(defs.thresholds || {}).length > 0;
      node.dataset.target = String(defs.threshold_seconds);
      node.dataset.overrides = "";
      text = `SL target ${K.fmtTarget(defs.threshold_seconds)}${varies ? " default" : ""}`;
    } else {
      const { base, overrides } = queueTarget(defs, scope.slice("queue:".length));
      node.dataset.target = String(base);
      node.dataset.overrides = overrides.map(([c, v]) => `${c}=${v}`).join(",");
      text = [`SL target ${K.fmtTarget(base)}`,
        ...overrides.map(([c, v]) => `${c} ${K.fmtTarget(v)}`)].join(" \u00b7 ");
    }
    if (node.textContent !== text) node.textContent = text;
  }

  // --- network: one request at a time, all from the single loop in tick() -----------
  async function loadRules() {
    const rules = await K.loadRules();
    if (rules) state.rules = rules;
    // Retried sooner when it failed; tiles stay uncoloured meanwhile.
    state.rulesDue = Date.now() + (rules ? K.RULES_REFRESH_MS : K.RULES_RETRY_MS);
  }

  async function loadDefinitions() {
    try {
      const res = await K.getJson("api/definitions");
      if (res.ok && res.body && typeof res.body === "object") {
        state.definitions = res.body;
        state.definitionsDue = Date.now() + K.RULES_REFRESH_MS;
        return;
      }
    } catch (_err) {
      // Retried below; the targets stay blank meanwhile.
    }
    state.definitionsDue = Date.now() + K.RULES_RETRY_MS;
  }

  async function loadCatalogue() {
    const catalogue = await K.loadCatalogue();
    if (!catalogue) return;
    KPIS = catalogue;
    TILES = Object.values(catalogue).filter((k) => k.board !== null)
      .sort((a, b) => a.board - b.board)
      .map((k) => ({ kpi: k.name, label: k.label, live: k.row === "now", fmt: k.format }));
  }

  async function loadSnapshot() {
    try {
      const res = await K.getJson("api/snapshot");
      if (res.ok && res.body && Array.isArray(res.body.rows)) {
        state.snapshot = res.body;
        state.lastOk = Date.now();
      }
    } catch (_err) {
      // The stale badge tells the room; the last good numbers stay up.
    }
  }

  async function loadAlerts() {
    const res = await K.getJson("api/alerts").catch(() => null);
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
    if (!TILES.length) await loadCatalogue();
    if (started >= state.rulesDue) await loadRules();
    if (started >= state.definitionsDue) await loadDefinitions();
    await loadSnapshot();
    render();
    if (started >= state.alertsDue) await loadAlerts();
  }

  // --- window selection (remembered in the URL hash: #w=15m) -------------------------
  function hashWindow() {
    return new URLSearchParams(location.hash.replace(/^#/, "")).get("w");
  }

  // The snapshot's windows in its own order (as the worker is configured: 5m … 24h,
  // today), without the live `now` rows.
  function availableWindows(snap) {
    const seen = new Set();
    for (const row of snap.rows) if (row.window !== "now") seen.add(row.window);
    return [...seen];
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
        b.title = K.windowText(w);
        b.addEventListener("click", () => chooseWindow(w));
        return b;
      }));
    }
    for (const b of nav.children) b.setAttribute("aria-pressed", String(b.dataset.choice === selected));
    $("window-label").textContent = K.windowText(selected);
    $("window-label").dataset.window = selected;
  }

  // --- board ---------------------------------------------------------------------------
  // A new group starts where the tiles switch between live (`now`) and windowed values:
  // the room reads "what is happening" apart from "how it went".
  const groupStart = (i) => i > 0 && TILES[i].live !== TILES[i - 1].live;

  function renderColumnHeads(selected) {
    const heads = $("colheads");
    if (!heads.children.length) {
      const widths = TILES.map((t) => `minmax(0, ${t.fmt === "count" ? NARROW : 1}fr)`);
      document.documentElement.style.setProperty("--cols", `minmax(9rem, 1.6fr) ${widths.join(" ")}`);
      heads.append(el("div", "colhead scope-head", "Queue"), ...TILES.map((t, i) => {
        const h = el("div", groupStart(i) ? "colhead group-start" : "colhead");
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
    const head = el("div", "scope");
    const name = el("h2", "", scope === "all" ? "All queues" : scope.slice("queue:".length));
    const target = el("p", "target");
    target.dataset.scope = scope;
    head.append(name, target);
    panel.append(head);
    panel.setAttribute("aria-label", name.textContent);
    const tiles = TILES.map((t, i) => {
      const tile = el("div", groupStart(i) ? "tile group-start" : "tile");
      tile.dataset.scope = scope;
      tile.dataset.kpi = t.kpi;
      tile.dataset.status = "none";
      const value = el("span", "value", DASH);
      tile.append(value);
      panel.append(tile);
      return { tile, value, spec: t };
    });
    return { panel, tiles, target };
  }

  // The text stays exactly the formatted value; only the "%" is drawn smaller.
  function showValue(node, text) {
    node.classList.toggle("long", text.length > 6);
    node.classList.toggle("short", text.length <= 3);
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

    const rows = K.rowIndex(snap);
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
      renderTarget(p.target, scope);
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
    renderFigures(rows.get(`all|${selected}`), selected);
    renderFooter(snap);
  }

  // Repeat-contact rate and cost per contact of the whole center, selected window.
  function renderFigures(row, win) {
    const box = $("center-figures");
    for (const kpi of CENTER_FIGURES) {
      const spec = KPIS[kpi];
      if (!spec) continue;
      let f = state.figures.get(kpi);
      if (!f) {
        const node = el("span", "figure");
        node.dataset.scope = "all";
        node.dataset.kpi = kpi;
        const value = el("span", "value", DASH);
        node.append(el("span", "figure-label", spec.label), value);
        box.append(node);
        f = { node, value };
        state.figures.set(kpi, f);
      }
      const text = format(spec.format, row ? row[kpi] : null);
      if (f.value.textContent !== text) f.value.textContent = text;
      f.node.dataset.window = win;
      f.node.title = `${spec.label}, all queues (${K.windowText(win)}): ${spec.help}`;
    }
  }

  function renderFooter(snap) {
    K.showAsOf($("as-of"), snap.as_of);
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
    return kind === "decimal" && isNum(value) ? K.fmtSigned(value.toFixed(1)) : format(kind, value);
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

  window.addEventListener("hashchange", render);
  K.downloadLink($("intervals-csv"));
  K.watchStale(() => state.lastOk);
  K.poll(tick);
})();
