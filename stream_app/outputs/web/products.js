// Products page: incidents per product (tickets opened with a `product`, contract v2
// §6.4), most incidents today first, with the backlog, SLA breaches, resolution time
// and first-contact resolution; products whose tickets are suddenly rising are flagged
// as top movers, because a spike on one product is usually one defect or outage.
// Reads GET api/snapshot (the product:<id> rows) once a second and api/rules (cell
// colours, as on the queue board) once a minute, one request at a time.
// Tests read rows through data-product / data-mover and cells through data-kpi /
// data-window, so keep those stable.
"use strict";

(() => {
  const K = window.KpiPage;
  const { $, el, format, DASH } = K;
  // [kpi, windows, footnote id]: the columns, grouped under the catalogue's label.
  const GROUPS = [
    ["tickets_opened", ["today", "24h", "1h"]],
    ["open_tickets", ["now"]],
    ["tickets_sla_breached", ["now"]],
    ["resolution_seconds", ["today", "24h"]],
    ["fcr_rate", ["today", "24h"]],
    ["csat", ["today", "24h"], "csat-note"],
  ];
  const SORT = ["tickets_opened", "today"];
  // Top mover: at least MOVER_MIN tickets opened in the last hour, and more than
  // MOVER_FACTOR times the product's average hourly count over the last 24 hours.
  // The floor keeps one ticket on a quiet product from flashing the flag.
  const MOVER_MIN = 3;
  const MOVER_FACTOR = 2;
  let KPIS = null;
  const state = {
    lastOk: 0, headsDone: false, rows: new Map(), order: "", rules: [], rulesDue: 0,
    csat: {}, csatDue: 0,
  };
  // CSAT per product (api/products): the surveys that name a ticket, joined with the
  // ticket's product by the worker; the snapshot's product rows have no survey KPIs.
  const CSAT_MS = 5000;
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const label = (kpi) => (KPIS[kpi] ? KPIS[kpi].label : kpi);

  function opened(rows, product, win) {
    const row = rows.get(`product:${product}|${win}`);
    return row && K.isNum(row.tickets_opened) ? row.tickets_opened : 0;
  }

  function isMover(rows, product) {
    const lastHour = opened(rows, product, "1h");
    return lastHour >= MOVER_MIN && lastHour > MOVER_FACTOR * opened(rows, product, "24h") / 24;
  }

  function renderHeads() {
    if (state.headsDone) return;
    state.headsDone = true;
    const top = el("tr");
    const sub = el("tr");
    const corner = el("th", "", "Product");
    corner.scope = "col";
    corner.rowSpan = 2;
    top.append(corner);
    for (const [kpi, wins, note] of GROUPS) {
      const th = el("th", "group", label(kpi));
      th.scope = "colgroup";
      th.colSpan = wins.length;
      th.dataset.kpi = kpi;
      if (note) {
        th.append(el("sup", "", "1"));
        th.setAttribute("aria-describedby", note);
      }
      top.append(th);
      wins.forEach((w, i) => {
        const s = el("th", i === 0 ? "sub group-start" : "sub", w);
        s.scope = "col";
        s.title = K.windowText(w);
        sub.append(s);
      });
    }
    $("products-head").replaceChildren(top, sub);
    $("mover-rule").textContent = `\u25b2 Top mover: at least ${MOVER_MIN} tickets opened in the `
      + `last hour and more than ${MOVER_FACTOR}\u00d7 the product's average hourly count over `
      + `the last 24 hours (opened 1 h > ${MOVER_FACTOR} \u00d7 opened 24 h \u00f7 24).`;
    $("csat-note").replaceChildren(el("sup", "", "1"), " CSAT of the surveys that name a ticket "
      + "of the product: the event contract has no survey KPIs per product, so each response "
      + "that names its ticket is joined with that ticket's product.");
  }

  function csatOf(product, win) {
    const perWindow = state.csat[win];
    const entry = perWindow ? perWindow[product] : null;
    return entry ? entry.csat : null;
  }

  function makeRow(product) {
    const tr = el("tr");
    tr.dataset.product = product;
    const name = el("th", "name");
    name.scope = "row";
    const mover = el("span", "mover", "\u25b2 top mover");
    mover.hidden = true;
    name.append(el("span", "", product), mover);
    tr.append(name);
    const cells = [];
    for (const [kpi, wins] of GROUPS) {
      wins.forEach((w, i) => {
        const td = el("td", i === 0 ? "num group-start" : "num", DASH);
        td.dataset.kpi = kpi;
        td.dataset.window = w;
        tr.append(td);
        cells.push({ td, kpi, win: w });
      });
    }
    return { tr, mover, cells };
  }

  function render(snap) {
    renderHeads();
    $("loading").hidden = true;
    const rows = K.rowIndex(snap);
    const products = [...new Set(snap.rows.filter((r) => r.scope.startsWith("product:"))
      .map((r) => r.scope.slice("product:".length)))];
    products.sort((a, b) => opened(rows, b, SORT[1]) - opened(rows, a, SORT[1])
      || collator.compare(a, b));
    $("nothing").hidden = products.length > 0;

    const keep = new Set(products);
    for (const [product, r] of state.rows) {
      if (!keep.has(product)) {
        r.tr.remove();
        state.rows.delete(product);
      }
    }
    const body = $("products-body");
    const order = products.join("\n");
    const reorder = order !== state.order;
    state.order = order;
    for (const product of products) {
      let r = state.rows.get(product);
      if (!r) {
        r = makeRow(product);
        state.rows.set(product, r);
      }
      if (reorder) body.append(r.tr);
      const mover = isMover(rows, product);
      r.tr.dataset.mover = String(mover);
      r.mover.hidden = !mover;
      for (const { td, kpi, win } of r.cells) {
        const row = rows.get(`product:${product}|${win}`);
        const value = kpi === "csat" ? csatOf(product, win) : (row ? row[kpi] : null);
        const text = format(KPIS[kpi] ? KPIS[kpi].format : "count", value);
        if (td.textContent !== text) td.textContent = text;
        td.dataset.status = K.cellStatus(state.rules, KPIS, `product:${product}`, kpi, win, row);
      }
    }
    K.showAsOf($("as-of"), snap.as_of);
  }

  async function tick() {
    if (!KPIS) KPIS = await K.loadCatalogue();
    if (!KPIS) return;
    if (Date.now() >= state.rulesDue) {
      const rules = await K.loadRules();
      if (rules) state.rules = rules;
      state.rulesDue = Date.now() + (rules ? K.RULES_REFRESH_MS : K.RULES_RETRY_MS);
    }
    if (Date.now() >= state.csatDue) {
      try {
        const res = await K.getJson("api/products");
        if (res.ok && res.body && res.body.csat) state.csat = res.body.csat;
      } catch (_err) {
        // Asked again later; the column keeps its last values.
      }
      state.csatDue = Date.now() + CSAT_MS;
    }
    try {
      const res = await K.getJson("api/snapshot");
      if (res.ok && res.body && Array.isArray(res.body.rows)) {
        state.lastOk = Date.now();
        render(res.body);
      }
    } catch (_err) {
      // The stale badge says so; the last table stays up.
    }
  }

  K.watchStale(() => state.lastOk);
  K.poll(tick);
})();
