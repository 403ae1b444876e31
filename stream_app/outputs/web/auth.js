// API token for the pages (KPI_API_TOKEN on the worker): when an api/ request is refused
// with 401, ask for the token once, keep it in this browser (localStorage) and send it as
// "Authorization: Bearer <token>" on every api/ request. Loaded before the other scripts;
// without a token configured on the worker nothing here ever acts.
(function () {
  "use strict";
  const KEY = "kpi-stream.api-token";
  const plainFetch = window.fetch.bind(window);
  let asking = null;
  let declined = false;

  function stored() {
    try { return localStorage.getItem(KEY); } catch (_err) { return null; }
  }

  function store(token) {
    try {
      if (token) localStorage.setItem(KEY, token); else localStorage.removeItem(KEY);
    } catch (_err) { /* private mode: asked again next time */ }
  }

  function isApi(input) {
    const url = new URL(typeof input === "string" ? input : input.url, document.baseURI);
    return url.origin === location.origin && /(^|\/)api\//.test(url.pathname);
  }

  function withToken(init, token) {
    const headers = new Headers((init && init.headers) || {});
    headers.set("Authorization", "Bearer " + token);
    return Object.assign({}, init, { headers });
  }

  function askOnce() {
    if (!asking) {
      asking = new Promise((resolve) => {
        const token = (window.prompt("API token for this wallboard (KPI_API_TOKEN):") || "").trim();
        declined = !token;
        store(token);
        resolve(token || null);
      }).finally(() => { asking = null; });
    }
    return asking;
  }

  window.fetch = async function (input, init) {
    if (!isApi(input)) return plainFetch(input, init);
    const token = stored();
    const res = await plainFetch(input, token ? withToken(init, token) : init);
    if (res.status !== 401 || declined) return res;
    store(null);
    const fresh = await askOnce();
    return fresh ? plainFetch(input, withToken(init, fresh)) : res;
  };
})();
