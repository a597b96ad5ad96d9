// The supervisors' wallboard: GET /api/wallboard once, then frames from /ws/wallboard every second.
// Every value is rendered with textContent. The HttpOnly cookie from /api/login authenticates both.
(() => {
  "use strict";
  const params = new URLSearchParams(location.search);
  const sl = params.get("sl") && /^\d+(\.\d+)?$/.test(params.get("sl")) ? params.get("sl") : "";
  const q = sl ? "?sl=" + encodeURIComponent(sl) : "";
  const $ = (id) => document.getElementById(id);
  const T = (key, vars) => window.CTI_WB_T(key, vars);  // wallboard-i18n.js
  const queueName = (q) => { const k = "queue." + q; const s = T(k); return s === k ? q : s; };
  let lastBoard = null;
  let ws = null, retry = 0, loggedIn = false;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) e.append(k);
    return e;
  }
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
  const secs = (x) => {
    if (x === null || x === undefined) return "–";
    const s = Math.round(x);
    return s >= 60 ? Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0") : T("wb.s", { n: s });
  };

  function cell(value, field, red) {
    return el("td", { "data-field": field, class: red ? "red" : "" }, value);
  }

  function tile(t, slSeconds) {
    const red = new Set(t.red);
    const name = t.queue === "*" ? T("wb.all_queues") : queueName(t.queue);
    const lvl = t.level || (red.size ? "red" : "green");  // thresholds: [wallboard] in cti.toml
    const div = el("div", { class: "tile level-" + lvl + (t.queue === "*" ? " overall" : "") + (red.size ? " alert" : ""),
                            "data-queue": t.queue, "data-level": lvl });
    div.append(el("h2", {}, name));
    const big = el("div", { class: "big" },
      el("div", {}, el("span", { class: "v", "data-field": "waiting" }, String(t.waiting)), el("span", { class: "k" }, T("wb.waiting"))),
      el("div", {}, el("span", { class: "v" + (red.has("longest_wait") ? " red" : ""), "data-field": "longest_wait" },
                       secs(t.longest_wait_s)), el("span", { class: "k" }, T("wb.longest_wait"))),
      el("div", {}, el("span", { class: "v" + (red.has("today.answer_rate") ? " red" : ""), "data-field": "today.answer_rate.big" },
                       pct(t.today.answer_rate)), el("span", { class: "k" }, T("wb.answered_today"))));
    div.append(big);
    const a = t.agents;
    const agents = el("div", { class: "agents" });
    for (const k of ["ready", "on_call", "ringing", "wrap_up", "paused", "unavailable"]) {
      const label = T("wb." + k);
      agents.append(el("span", {}, el("b", { "data-field": "agents." + k }, String(a[k])), " " + label));
    }
    div.append(agents);
    const rows = [
      ["offered", T("wb.offered"), (p) => String(p.offered)],
      ["answered", T("wb.answered"), (p) => String(p.answered)],
      ["abandoned", T("wb.abandoned"), (p) => String(p.abandoned)],
      ["answer_rate", T("wb.answer_rate"), (p) => pct(p.answer_rate)],
      ["service_level", T("wb.service_level", { s: slSeconds }), (p) => pct(p.service_level)],
      ["abandon_rate", T("wb.abandon_rate"), (p) => pct(p.abandon_rate)],
      ["avg_wait_s", T("wb.avg_wait"), (p) => secs(p.avg_wait_s)],
      ["aht_s", T("wb.aht"), (p) => secs(p.aht_s)],
    ];
    const table = el("table", {}, el("tr", {}, el("th", {}, ""), el("th", {}, T("wb.today")), el("th", {}, T("wb.last_hour"))));
    for (const [key, label, fmt] of rows) {
      table.append(el("tr", {}, el("th", {}, label),
        cell(fmt(t.today), "today." + key, red.has("today." + key)),
        cell(fmt(t.last_hour), "last_hour." + key, red.has("last_hour." + key))));
    }
    div.append(table);
    return div;
  }

  function render(board) {
    const tiles = $("tiles");
    const next = [tile(board.overall, board.targets.sl_seconds), ...board.queues.map((t) => tile(t, board.targets.sl_seconds))];
    tiles.replaceChildren(...next);
    if (board.intraday && window.CTI_WALLBOARD_CHART) window.CTI_WALLBOARD_CHART.draw($("intraday-chart"), board.intraday);
    lastBoard = board;
    $("sl-label").textContent = T("wb.sl_label", { s: board.targets.sl_seconds });
    // 24-hour clock: the call center's local time when the board gives it, else the browser's
    $("clock").textContent = board.at_local ? String(board.at_local).slice(11, 19)
      : new Date(board.at * 1000).toLocaleTimeString("en-GB", { hour12: false });
    document.body.dataset.updated = String(board.at);
  }

  function show(view) {
    $("login-view").classList.toggle("hidden", view !== "login");
    $("board-view").classList.toggle("hidden", view !== "board");
  }

  async function load() {
    const r = await fetch("/api/wallboard" + q, { credentials: "same-origin" });
    if (r.status === 401 || r.status === 403) {
      loggedIn = false;
      show("login");
      if (r.status === 403) $("login-error").textContent = T("wb.supervisors");
      return;
    }
    if (!r.ok) throw new Error(T("wb.http", { status: r.status }));
    loggedIn = true;
    render(await r.json());
    show("board");
    connect();
  }

  function connect() {
    if (ws) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(proto + "://" + location.host + "/ws/wallboard" + q);
    ws.onopen = () => { retry = 0; $("conn").className = "on"; };
    ws.onmessage = (ev) => {
      let m; try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "wallboard") render(m.board);
    };
    ws.onclose = (ev) => {
      $("conn").className = "off"; ws = null;
      if (ev.code === 4401 || ev.code === 4403) { load(); return; }
      const delay = Math.min(30000, 500 * 2 ** retry++);
      setTimeout(() => { if (loggedIn) connect(); }, delay);
    };
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    const r = await fetch("/api/login", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("login-username").value, password: $("login-password").value }) });
    if (!r.ok) { $("login-error").textContent = r.status === 429 ? T("wb.throttled") : T("wb.bad"); return; }
    const data = await r.json();
    if (!["supervisor", "admin"].includes(data.agent.role)) { $("login-error").textContent = T("wb.supervisors"); return; }
    load();
  });

  function applyLang() {
    document.documentElement.lang = window.CTI_WB_LANG();
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = T(n.dataset.i18n); });
    document.querySelectorAll("[data-i18n-title]").forEach((n) => { n.title = T(n.dataset.i18nTitle); });
    if (lastBoard) render(lastBoard);
  }
  document.querySelectorAll(".lang-btn").forEach((b) => b.addEventListener("click", () => {
    try { localStorage.setItem("cti.lang", b.dataset.lang); } catch (e) { /* storage off */ }
    applyLang();
  }));
  applyLang();

  load().catch((e) => { $("login-error").textContent = e.message || String(e); show("login"); });
})();
