"use strict";
/* cti agent console: plain JS, no build step. Caller data is only ever set with textContent. */
(function () {
  const $ = (id) => document.getElementById(id);
  const I18N = window.CTI_I18N;
  const DISPOSITIONS = ["resolved", "follow_up", "complaint", "sale", "information", "wrong_number", "other"];
  let lang = localStorage.getItem("cti.lang") || ((navigator.language || "zh").startsWith("zh") ? "zh" : "en");
  let me = null;          // the account
  let ws = null;
  let wsRetry = 0;
  let pop = null;         // the current/last screen_pop message
  let wrapTarget = null;  // {server, uniqueid} the wrap-up form saves into
  let editingCustomer = null;
  const agentsLive = new Map();

  const t = (key) => (I18N[lang] && I18N[lang][key]) || (I18N.en[key]) || key;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(typeof c === "string" ? c : c);
    return e;
  }
  const show = (node, on) => node.classList.toggle("hidden", !on);

  function applyLang() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
    const sel = $("wrapup-disposition"); const cur = sel.value;
    sel.replaceChildren(...DISPOSITIONS.map((d) => el("option", { value: d }, t("disp." + d))));
    if (cur) sel.value = cur;
    if (pop) renderPop();
    renderAgents();
    document.dispatchEvent(new CustomEvent("cti:lang", { detail: lang }));  // tickets.js, kb.js
  }
  document.querySelectorAll("[data-lang]").forEach((b) => b.addEventListener("click", () => {
    lang = b.dataset.lang; localStorage.setItem("cti.lang", lang); applyLang();
  }));

  async function api(method, path, body) {
    const opts = { method, headers: {}, credentials: "same-origin" };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && path !== "/api/login") { showLogin(); }
    if (!r.ok) { const err = new Error((data && data.error) || r.statusText); err.status = r.status; throw err; }
    return data;
  }

  function toast(text, bad) {
    const n = $("toast"); n.textContent = text; n.classList.toggle("bad", !!bad); show(n, true);
    clearTimeout(toast.timer); toast.timer = setTimeout(() => show(n, false), 4000);
  }

  /* ---------- login ---------- */
  function showLogin() {
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    me = null; show($("console-view"), false); show($("login-view"), true); $("login-username").focus();
  }
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const data = await api("POST", "/api/login", { username: $("login-username").value, password: $("login-password").value });
      $("login-password").value = "";
      start(data.agent);
    } catch (e) {
      $("login-error").textContent = e.status === 429 ? t("login.throttled") : t("login.bad");
    }
  });
  $("btn-signout").addEventListener("click", async () => { try { await api("POST", "/api/logout"); } catch (e) {} showLogin(); });

  function start(agent) {
    me = agent;
    if (!localStorage.getItem("cti.lang") && agent.language) lang = agent.language;
    applyLang();
    $("agent-name").textContent = agent.display_name + (agent.interface ? " · " + agent.interface : "");
    const sup = agent.role !== "agent";
    document.querySelectorAll(".supervisor-only").forEach((n) => show(n, sup));
    show($("state-controls"), !sup || !!agent.interface);
    show($("login-view"), false); show($("console-view"), true);
    connect();
    loadHistory();
    document.dispatchEvent(new CustomEvent("cti:start", { detail: agent }));  // tickets.js, kb.js
  }

  /* ---------- websocket ---------- */
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(proto + "://" + location.host + "/ws");  // the HttpOnly cookie authenticates
    ws.onopen = () => { wsRetry = 0; setConn(true); };
    ws.onmessage = (ev) => { let m; try { m = JSON.parse(ev.data); } catch (e) { return; } onMessage(m); };
    ws.onclose = (ev) => {
      setConn(false); ws = null;
      if (ev.code === 4401) { showLogin(); return; }
      if (ev.code === 4000 || !me) return;  // replaced by another tab
      const delay = Math.min(10000, 300 * Math.pow(2, wsRetry++)) * (0.75 + Math.random() / 2);
      setTimeout(() => { if (me && !ws) connect(); }, delay);
    };
  }
  function setConn(on) { const d = $("conn"); d.className = "dot " + (on ? "on" : "off"); d.title = t(on ? "conn.on" : "conn.off"); }

  function onMessage(m) {
    switch (m.type) {
      case "hello": break;
      case "screen_pop": pop = m; setWrapTarget(m.call); renderPop(); selectTab("pop-tab"); break;
      case "call_update":
        if (pop && pop.call.uniqueid === m.uniqueid) { pop.status = m.status; renderStatus(); }
        if (["ended", "transferred"].includes(m.status)) loadHistory();
        break;
      case "agent_state":
        if (me && m.interface === me.interface) renderMyState(m);
        if (me && me.role !== "agent") { agentsLive.set(m.interface, m); renderAgents(); }
        break;
      case "agents": m.agents.forEach((a) => agentsLive.set(a.interface, a)); renderAgents(); break;
    }
    document.dispatchEvent(new CustomEvent("cti:message", { detail: m }));  // tickets.js, kb.js
  }

  /* ---------- state controls ---------- */
  function renderMyState(s) {
    const n = $("agent-state");
    n.className = "pill state-" + s.state; n.textContent = t("state." + s.state) + (s.paused_reason ? " · " + s.paused_reason : "");
  }
  async function setState(state, reason) {
    try { await api("POST", "/api/agent/state", { state, reason }); }
    catch (e) { toast(e.status === 503 ? t("err.ami") : e.message, true); }
  }
  $("btn-ready").addEventListener("click", () => setState("ready"));
  $("btn-pause").addEventListener("click", () => setState("paused", $("pause-reason").value));
  $("btn-logout-queues").addEventListener("click", () => setState("logged_out"));

  /* ---------- the pop ---------- */
  function fmtTime(iso) { if (!iso) return "—"; const d = new Date(iso); return d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "short", timeStyle: "short" }); }
  function fmtDate(iso) { return iso ? iso.slice(0, 10) : "—"; }

  function renderStatus() {
    const s = pop.status;
    const b = $("pop-status"); b.textContent = t("status." + s); b.className = "status-badge s-" + s;
    $("pop").dataset.status = s;
  }

  function renderPop() {
    const p = pop, c = p.call, cu = p.customer;
    show($("pop-empty"), false); show($("pop-body"), true); $("pop").classList.remove("empty");
    renderStatus();
    $("call-queue").textContent = c.queue || "—";
    $("call-priority").textContent = c.priority == null ? "—" : String(c.priority);
    $("call-ivr").textContent = c.ivr_choice || "—";
    $("call-dialed").textContent = c.dialed || "—";
    tickWait();
    $("pop-number").textContent = c.caller_e164 || c.caller_number || "—";
    show($("unknown-box"), p.unknown_caller); show($("known-box"), !p.unknown_caller);
    const complaints = p.open_complaints || [];
    show($("flag-complaint"), complaints.length > 0);
    if (complaints.length) {
      const first = complaints[0];
      $("flag-complaint").textContent = t("pop.complaint_flag") + " ×" + complaints.length + " · " + t("pop.sla") + " " +
        fmtTime(first.sla_deadline) + (first.overdue ? " · " + t("pop.overdue") : "");
    }
    if (p.unknown_caller) {
      $("pop-name").textContent = c.caller_name || c.caller_e164 || c.caller_number || "?";
      show($("flag-vip"), false); $("pop-lang").textContent = ""; $("pop-dealer").textContent = "";
      return;
    }
    $("pop-name").textContent = cu.name;
    show($("flag-vip"), cu.vip); $("pop").classList.toggle("is-vip", cu.vip);
    $("pop-lang").textContent = t("lang." + cu.language); $("pop-dealer").textContent = cu.dealer || "";
    show($("suggestion"), !!p.suggestion);
    if (p.suggestion) $("suggestion-text").textContent = p.suggestion[lang] || p.suggestion.en;
    show($("complaints-section"), complaints.length > 0);
    $("complaints").replaceChildren(...complaints.map((k) => el("li", { class: k.overdue ? "overdue" : "" },
      el("b", {}, "#" + k.id + " "), k.description || k.category || "", " ",
      el("span", { class: "sla" }, t("pop.sla") + " " + fmtTime(k.sla_deadline) + (k.overdue ? " · " + t("pop.overdue") : "")))));
    $("products").replaceChildren(...(cu.products.length ? cu.products.map((pr) => el("tr", {},
      el("td", {}, t("line." + pr.product_line)), el("td", {}, pr.model), el("td", {}, fmtDate(pr.purchased_on))))
      : [el("tr", {}, el("td", { colspan: "3", class: "muted" }, t("pop.none")))]));
    $("last-calls").replaceChildren(...(p.last_calls.length ? p.last_calls.map((lc) => el("li", {},
      el("span", { class: "when" }, fmtTime(lc.started_at)), " ", el("span", { class: "pill" }, lc.queue || "—"), " ",
      lc.disposition ? el("span", { class: "pill" }, t("disp." + lc.disposition)) : null,
      el("div", { class: "notes" }, lc.notes || ""))) : [el("li", { class: "muted" }, t("pop.none"))]));
  }
  function tickWait() {
    if (!pop) return;
    const c = pop.call;
    let w = c.wait_s;
    if (c.queued_at && (pop.status === "ringing")) w = Math.max(0, Date.now() / 1000 - c.queued_at);
    $("call-wait").textContent = w == null ? "—" : Math.round(w) + t("unit.s");
  }
  setInterval(tickWait, 1000);

  /* ---------- wrap-up ---------- */
  function setWrapTarget(call) {
    wrapTarget = { server: call.server, uniqueid: call.uniqueid };
    $("wrapup-call").textContent = (call.caller_e164 || call.caller_number || "") + " · " + call.uniqueid;
    $("wrapup-notes").value = ""; $("wrapup-status").textContent = ""; $("wrapup-save").disabled = false;
  }
  $("wrapup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!wrapTarget) return;
    try {
      await api("POST", "/api/calls/wrapup", { ...wrapTarget, disposition: $("wrapup-disposition").value, notes: $("wrapup-notes").value });
      $("wrapup-status").textContent = "✓ " + t("wrapup.saved"); $("wrapup-status").className = "small ok-text";
      loadHistory();
    } catch (e) { $("wrapup-status").textContent = e.message; $("wrapup-status").className = "small error"; }
  });

  /* ---------- customer create / edit ---------- */
  function openCustomerForm(customer, number) {
    editingCustomer = customer ? customer.id : null;
    $("customer-form-title").textContent = t(customer ? "customer.edit_title" : "customer.new_title");
    $("cf-family").value = customer ? customer.family_name : "";
    $("cf-given").value = customer ? customer.given_name : "";
    $("cf-title").value = customer ? customer.title : "";
    $("cf-language").value = customer ? customer.language : ((pop && pop.new_customer && pop.new_customer.language) || "zh");
    $("cf-phones").value = customer ? customer.phones.join("; ") : (number || "");
    $("cf-products").value = customer ? customer.products.map((p) => [p.product_line, p.model, p.purchased_on || ""].join(":")).join("; ") : "";
    $("cf-email").value = customer ? (customer.email || "") : "";
    $("cf-vip").checked = customer ? customer.vip : false;
    $("cf-status").textContent = "";
    show($("customer-form"), true); $("cf-family").focus();
  }
  $("btn-create").addEventListener("click", () => openCustomerForm(null, pop && pop.new_customer && pop.new_customer.phones));
  $("btn-edit").addEventListener("click", () => pop && pop.customer && openCustomerForm(pop.customer));
  $("cf-cancel").addEventListener("click", () => show($("customer-form"), false));
  $("customer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { family_name: $("cf-family").value, given_name: $("cf-given").value, title: $("cf-title").value,
      language: $("cf-language").value, phones: $("cf-phones").value, products: $("cf-products").value,
      email: $("cf-email").value, vip: $("cf-vip").checked };
    try {
      const r = editingCustomer ? await api("PUT", "/api/customers/" + editingCustomer, body) : await api("POST", "/api/customers", body);
      $("cf-status").textContent = "✓ " + t("customer.saved"); $("cf-status").className = "small ok-text";
      const fresh = await api("GET", "/api/customers/" + r.id);
      if (pop) {
        pop.customer = fresh.customer; pop.unknown_caller = false; pop.open_complaints = fresh.open_complaints;
        pop.last_calls = fresh.last_calls; renderPop();
      }
      setTimeout(() => show($("customer-form"), false), 1200);
    } catch (e) { $("cf-status").textContent = e.message; $("cf-status").className = "small error"; }
  });

  /* ---------- history ---------- */
  async function loadHistory() {
    if (!me) return;
    const q = $("history-q").value.trim();
    try {
      const data = await api("GET", "/api/calls?limit=50" + (q ? "&q=" + encodeURIComponent(q) : ""));
      const rows = data.calls.map((r) => el("tr", {},
        el("td", {}, fmtTime(r.started_at)),
        el("td", {}, r.customer_name ? el("b", {}, r.customer_name) : "", r.vip ? el("span", { class: "vip small" }, " ★") : null,
          el("div", { class: "muted small" }, r.caller_e164 || r.caller_number || "")),
        el("td", {}, r.queue || "—"), el("td", {}, r.outcome || "—"),
        el("td", {}, r.disposition ? t("disp." + r.disposition) : "—"), el("td", { class: "notes" }, r.notes || "")));
      $("history-rows").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, t("history.empty")))]));
    } catch (e) { /* shown on next try */ }
  }
  $("history-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadHistory(); });

  /* ---------- supervisors ---------- */
  function renderAgents() {
    const body = $("agents-rows"); if (!body) return;
    const rows = [...agentsLive.values()].sort((a, b) => a.interface.localeCompare(b.interface)).map((a) => el("tr", {},
      el("td", {}, a.interface), el("td", {}, a.name || ""),
      el("td", {}, el("span", { class: "pill state-" + a.state }, t("state." + a.state))),
      el("td", {}, a.paused_reason || ""), el("td", {}, Object.keys(a.queues || {}).join(", "))));
    body.replaceChildren(...rows);
  }

  /* ---------- tabs ---------- */
  function selectTab(id) {
    document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === id));
    document.querySelectorAll(".tabpane").forEach((p) => show(p, p.id === id));
    if (id === "history-tab") loadHistory();
  }
  document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => selectTab(b.dataset.tab)));

  /* ---------- what tickets.js / kb.js use ---------- */
  window.CTI = { api, t, el, show, toast, selectTab, fmtTime,
    get me() { return me; }, get pop() { return pop; }, get lang() { return lang; } };

  /* ---------- boot ---------- */
  applyLang();
  api("GET", "/api/me").then((d) => start(d.agent)).catch(() => showLogin());
})();
