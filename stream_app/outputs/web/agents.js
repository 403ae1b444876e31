// Agents page: one row per logged-in agent with its state in colour, time in state
// (counting up between polls), queues, and today's answered contacts, AHT and the last
// hour's occupancy from the agent's own snapshot rows. Who is on a break and for how
// long is what a supervisor walks the floor for; this saves the walk.
// Reads GET api/agents (states), api/snapshot (the agent:<id> rows) and, once a minute,
// api/rules (cell colours, as on the queue board), one request at a time. Tests read rows through data-agent / data-state and cells through data-kpi /
// data-window / data-field, so keep those stable.
"use strict";

(() => {
  const K = window.KpiPage;
  const { $, el, format, DASH } = K;
  // The logged-in states (contract §3), in the order rows are sorted: who can take a
  // contact first, who is away last.
  const STATES = ["available", "busy", "wrap_up", "paused"];
  // Per agent, from its snapshot rows: [kpi, window]. The labels come from api/kpis.
  const COLUMNS = [["contacts_answered", "today"], ["aht_seconds", "today"], ["occupancy", "1h"]];
  // Time in state is repainted more often than it is polled, so the seconds tick evenly.
  const REPAINT_MS = 250;

  let KPIS = null;
  const state = {
    agents: null, receivedAt: 0, agentsOk: 0, snapshot: null, snapshotOk: 0,
    rows: new Map(), order: "", headsDone: false, counts: new Map(), rules: [], rulesDue: 0,
  };

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  // "Available", "On contact"…: the catalogue's label of agents_<state>.
  function stateLabel(s) {
    const k = KPIS && KPIS[`agents_${s}`];
    return k ? k.label : s.replace(/_/g, " ");
  }

  // --- network -------------------------------------------------------------------------
  async function loadAgents() {
    try {
      const res = await K.getJson("api/agents");
      if (res.ok && res.body && Array.isArray(res.body.agents)) {
        state.agents = res.body;
        state.receivedAt = Date.now();
        state.agentsOk = state.receivedAt;
      }
    } catch (_err) {
      // The stale badge says so; the last list stays up.
    }
  }

  async function loadSnapshot() {
    try {
      const res = await K.getJson("api/snapshot");
      if (res.ok && res.body && Array.isArray(res.body.rows)) {
        state.snapshot = K.rowIndex(res.body);
        state.snapshotOk = Date.now();
      }
    } catch (_err) {
      // As above.
    }
  }

  async function tick() {
    if (!KPIS) KPIS = await K.loadCatalogue();
    if (!KPIS) return;
    if (Date.now() >= state.rulesDue) {
      const rules = await K.loadRules();
      if (rules) state.rules = rules;
      state.rulesDue = Date.now() + (rules ? K.RULES_REFRESH_MS : K.RULES_RETRY_MS);
    }
    // States first and painted at once: a pause should show as soon as it is known.
    await loadAgents();
    render();
    await loadSnapshot();
    render();
  }

  // --- page ------------------------------------------------------------------------------
  function renderHeads() {
    if (state.headsDone) return;
    state.headsDone = true;
    const head = (text, sub, attrs) => {
      const th = el("th", "", text);
      th.scope = "col";
      if (sub) th.append(el("small", "", sub));
      Object.assign(th.dataset, attrs || {});
      return th;
    };
    $("agents-head").replaceChildren(
      head("Agent"), head("State"),
      head(KPIS.state_seconds ? KPIS.state_seconds.label : "In state", "", { kpi: "state_seconds" }),
      head("Queues"),
      ...COLUMNS.map(([kpi, win]) => head(KPIS[kpi] ? KPIS[kpi].label : kpi, win, { kpi, window: win })),
    );
    $("note").textContent = COLUMNS
      .map(([kpi, win]) => `${KPIS[kpi] ? KPIS[kpi].label : kpi}: ${K.windowText(win)}`).join(" \u00b7 ");
  }

  function makeRow(agent) {
    const tr = el("tr");
    tr.dataset.agent = agent;
    const name = el("th", "name", agent);
    name.scope = "row";
    const stateCell = el("td", "state");
    const badge = el("span", "badge");
    stateCell.append(badge);
    const time = el("td", "num");
    time.dataset.kpi = "state_seconds";
    const queues = el("td", "queues");
    queues.dataset.field = "queues";
    const cells = COLUMNS.map(([kpi, win]) => {
      const td = el("td", "num", DASH);
      td.dataset.kpi = kpi;
      td.dataset.window = win;
      return td;
    });
    tr.append(name, stateCell, time, queues, ...cells);
    return { tr, stateCell, badge, time, queues, cells, seconds: 0, state: "" };
  }

  function renderCounts(list) {
    const box = $("state-counts");
    const counts = { logged_in: list.length };
    for (const s of STATES) counts[s] = 0;
    for (const a of list) counts[a.state] = (counts[a.state] || 0) + 1;
    for (const key of ["logged_in", ...STATES]) {
      let item = state.counts.get(key);
      if (!item) {
        const li = el("li", "state-count");
        li.dataset.stateCount = key;
        const n = el("span", "n", "0");
        li.append(n, el("span", "what", stateLabel(key)));
        box.append(li);
        item = { li, n };
        state.counts.set(key, item);
      }
      const text = String(counts[key]);
      if (item.n.textContent !== text) item.n.textContent = text;
    }
  }

  function render() {
    const data = state.agents;
    if (!data) return;
    renderHeads();
    $("loading").hidden = true;
    const rank = (s) => {
      const i = STATES.indexOf(s);
      return i < 0 ? STATES.length : i;
    };
    const list = data.agents.filter((a) => a.state !== "offline")
      .sort((a, b) => rank(a.state) - rank(b.state) || collator.compare(a.agent, b.agent));
    renderCounts(list);
    $("nobody").hidden = list.length > 0;

    const keep = new Set(list.map((a) => a.agent));
    for (const [agent, r] of state.rows) {
      if (!keep.has(agent)) {
        r.tr.remove();
        state.rows.delete(agent);
      }
    }
    const body = $("agents-body");
    const order = list.map((a) => a.agent).join("\n");
    const reorder = order !== state.order;
    state.order = order;
    for (const a of list) {
      let r = state.rows.get(a.agent);
      if (!r) {
        r = makeRow(a.agent);
        state.rows.set(a.agent, r);
      }
      if (reorder) body.append(r.tr);
      if (r.state !== a.state) {
        r.state = a.state;
        r.tr.dataset.state = a.state;
        r.badge.textContent = stateLabel(a.state);
      }
      r.seconds = Number(a.state_seconds) || 0;
      const queues = (a.queues || []).join(", ") || DASH;
      if (r.queues.textContent !== queues) r.queues.textContent = queues;
      COLUMNS.forEach(([kpi, win], i) => {
        const row = state.snapshot ? state.snapshot.get(`agent:${a.agent}|${win}`) : null;
        const text = format(KPIS[kpi] ? KPIS[kpi].format : "count", row ? row[kpi] : null);
        if (r.cells[i].textContent !== text) r.cells[i].textContent = text;
        r.cells[i].dataset.status = K.cellStatus(state.rules, KPIS, `agent:${a.agent}`, kpi, win, row);
      });
    }
    paintTimes();
    K.showAsOf($("as-of"), data.as_of);
  }

  // Time in state as of now: the worker's value at the answer, plus the time since.
  function paintTimes() {
    if (!state.receivedAt) return;
    const since = (Date.now() - state.receivedAt) / 1000;
    for (const r of state.rows.values()) {
      const text = K.fmtDuration(Math.floor(r.seconds + since));
      if (r.time.textContent !== text) r.time.textContent = text;
    }
  }

  setInterval(paintTimes, REPAINT_MS);
  K.watchStale(() => (state.agentsOk && state.snapshotOk ? Math.min(state.agentsOk, state.snapshotOk) : 0));
  K.poll(tick);
})();
