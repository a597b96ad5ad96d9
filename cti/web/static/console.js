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
  let pop = null;         // the screen_pop on screen (ringing, or the call the agent took)
  const pops = new Map(); // uniqueid -> screen_pop of the calls rung here lately
  const answered = [];    // pops of the calls the agent answered whose wrap-up is not done; [0] is in the form
  let wrapTarget = null;  // {server, uniqueid, version} the wrap-up form saves into (answered[0]'s call)
  let missed = [];        // [{pop, status, at}] calls that rang here and were taken elsewhere or hung up
  let myState = null;     // the last agent_state of this agent
  let clockSkew = 0;      // server clock - browser clock, seconds (from hello)
  const FOLDED = ["missed", "answered_elsewhere", "caller_left"];
  let editingCustomer = null;
  const agentsLive = new Map();

  const t = (key) => (I18N[lang] && I18N[lang][key]) || (I18N.en[key]) || key;
  // a queue's name in the page's language (the name itself for a queue the dictionaries do not know)
  const queueName = (q) => { if (!q) return "—"; const k = "queue." + q; const s = t(k); return s === k ? q : s; };
  // an API error in the page's language: its stable code (backoffice-i18n.js apierr.*), else the status's
  const errText = (e) => {
    const key = "apierr." + ((e && e.code) || "");
    const generic = ["bad_request", "forbidden", "not_found", "conflict", "error", ""].includes((e && e.code) || "");
    let s = (lang === "en" && generic && e && e.message) || (I18N[lang] && I18N[lang][key]) || (lang === "en" && e && e.message)
      || I18N[lang]["apierr.error"] || (e && e.message) || "";
    for (const [k, v] of Object.entries((e && e.params) || {})) s = s.split("{" + k + "}").join(String(v));
    return s;
  };

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
    document.title = "cti · " + t("app.title");
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
    const sel = $("wrapup-disposition"); const cur = sel.value;
    sel.replaceChildren(...DISPOSITIONS.map((d) => el("option", { value: d }, t("disp." + d))));
    if (cur) sel.value = cur;
    if (pop) renderPop();
    if (myState) renderMyState(myState);
    renderWrapTarget(); renderMissed();
    renderAgents();
    if (me && !$("history-tab").classList.contains("hidden")) loadHistory();
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
    if (!r.ok) {
      const err = new Error((data && data.error) || r.statusText); err.status = r.status;
      err.code = (data && data.code) || ({ 400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 429: "too_many", 502: "pbx_refused", 503: "unavailable" })[r.status] || "error";
      err.params = (data && data.params) || {};
      throw err;
    }
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
      case "hello": if (m.server_time) clockSkew = m.server_time - Date.now() / 1000; break;
      case "screen_pop": onPop(m); break;
      case "call_update": onCallUpdate(m); break;
      case "agent_state":
        if (me && m.interface === me.interface) { myState = m; renderMyState(m); foldStaleRing(m); }
        if (me && me.role !== "agent") { agentsLive.set(m.interface, m); renderAgents(); }
        break;
      case "agents": m.agents.forEach((a) => agentsLive.set(a.interface, a)); renderAgents(); break;
    }
    document.dispatchEvent(new CustomEvent("cti:message", { detail: m }));  // tickets.js, kb.js
  }

  /* ---------- state controls ---------- */
  function renderMyState(s) {
    const n = $("agent-state");
    let text = t("state." + s.state) + (s.paused_reason ? " · " + s.paused_reason : "");
    if (s.state === "wrap_up" && s.wrapup_until) {  // Asterisk's wrapuptime: the next call waits
      const left = Math.max(0, Math.ceil(s.wrapup_until - (Date.now() / 1000 + clockSkew)));
      text += " · " + left + t("unit.s");
    }
    n.className = "pill state-" + s.state; n.textContent = text;
  }
  setInterval(() => { if (myState && myState.state === "wrap_up") renderMyState(myState); }, 1000);
  async function setState(state, reason) {
    try { await api("POST", "/api/agent/state", { state, reason }); }
    catch (e) { toast(e.status === 503 ? t("err.ami") : errText(e), true); }
  }
  $("btn-ready").addEventListener("click", () => setState("ready"));
  $("btn-pause").addEventListener("click", () => setState("paused", $("pause-reason").value));
  $("btn-logout-queues").addEventListener("click", () => setState("logged_out"));

  /* ---------- which pop is on screen ---------- */
  // A ringing pop shows while the phone rings, without leaving the tab the agent is on; when someone
  // else answers or the caller hangs up it folds into the "missed" list. Only the call the agent
  // answers switches to the call tab and gets the wrap-up form, which no later pop takes away.
  function onPop(m) {
    pops.set(m.call.uniqueid, m);
    if (pops.size > 50) pops.delete(pops.keys().next().value);
    pop = m; renderPop(); markRinging();
    if (m.status === "connected") onAnswered(m);
  }
  function onCallUpdate(m) {
    const p = pops.get(m.uniqueid);
    if (p) {
      const wasAnswered = p.status === "connected" || answered.some((x) => x.call.uniqueid === p.call.uniqueid);
      if (m.status === "connected" && p.call.queued_at && m.at) p.call.wait_s = Math.max(0, m.at - p.call.queued_at);
      if (!wasAnswered && p.status === "ringing" && m.at && p.call.queued_at) p.call.wait_s = Math.max(0, m.at - p.call.queued_at);
      p.status = m.status;
      if (m.status === "connected") onAnswered(p);
      else if (FOLDED.includes(m.status) && !wasAnswered) fold(p, m.status, m.at);
      else if (p === pop) { renderStatus(); tickWait(); }
    }
    markRinging();
    if (["ended", "transferred"].includes(m.status)) loadHistory();
  }
  function onAnswered(p) {
    const i = answered.findIndex((x) => x.call.uniqueid === p.call.uniqueid);  // a pop re-sent on reconnect
    if (i < 0) answered.push(p); else answered[i] = p;
    if (wrapTarget && wrapTarget.uniqueid === p.call.uniqueid) wrapTarget.pop = p;
    if (!wrapTarget || wrapTarget.saved && answered[0] !== p) nextWrap();
    pop = p; renderPop(); selectTab("pop-tab");
  }
  function fold(p, status, at) {
    pops.delete(p.call.uniqueid);
    missed.unshift({ pop: p, status, at: at || Date.now() / 1000 });
    missed = missed.slice(0, 20);
    renderMissed();
    if (pop === p) {  // back to the call the agent is wrapping up, or to the empty pop
      pop = answered.length ? answered[0] : null;
      if (pop) renderPop(); else showEmptyPop();
    }
  }
  function foldStaleRing(s) {  // the pill and the pop agree: a ring the PBX no longer reports is over
    for (const p of [...pops.values()]) {
      if (p.status === "ringing" && s.state !== "ringing" && s.on_call !== p.call.uniqueid &&
          !(s.ringing || []).includes(p.call.uniqueid)) fold(p, "missed", s.at);
    }
    markRinging();
  }
  function markRinging() {
    const ringing = [...pops.values()].some((p) => p.status === "ringing");
    const b = document.querySelector(".tab[data-tab='pop-tab']");
    if (b) b.classList.toggle("ringing", ringing);
  }
  function showEmptyPop() {
    show($("pop-empty"), true); show($("pop-body"), false); $("pop").classList.add("empty"); $("pop").dataset.status = "none";
  }
  function callerLabel(p) {
    const c = p.call;
    const who = p.customer && !p.unknown_caller ? p.customer.name : (c.caller_e164 || c.caller_number || "?");
    return who + (p.customer && !p.unknown_caller && (c.caller_e164 || c.caller_number) ? " · " + (c.caller_e164 || c.caller_number) : "");
  }
  function renderMissed() {
    show($("missed-card"), missed.length > 0);
    $("missed-list").replaceChildren(...missed.map((x) => el("li", {},
      el("span", { class: "when" }, fmtTime(new Date(x.at * 1000).toISOString())), " ",
      el("b", {}, callerLabel(x.pop)), " ", el("span", { class: "pill s-" + x.status }, t("status." + x.status)))));
  }

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
    $("call-queue").textContent = queueName(c.queue);
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
    if (p.unknown_caller) {  // the number is the headline; the carrier's name ("WIRELESS CALLER") only a hint
      $("pop-name").textContent = c.caller_e164 || c.caller_number || "?";
      $("pop-number").textContent = c.caller_name ? t("pop.callerid_name") + " " + c.caller_name : "";
      show($("flag-vip"), false); $("pop").classList.remove("is-vip");
      const lg = c.lang || (p.new_customer && p.new_customer.language);
      $("pop-lang").textContent = lg ? t("lang." + lg) : ""; show($("pop-lang"), !!lg);
      $("pop-dealer").textContent = "";
      return;
    }
    show($("pop-lang"), true);
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
      el("span", { class: "when" }, fmtTime(lc.started_at)), " ", el("span", { class: "pill" }, queueName(lc.queue)), " ",
      el("span", { class: "pill outcome" }, lc.outcome ? t("outcome." + lc.outcome) : "—"), " ",
      lc.disposition ? el("span", { class: "pill" }, t("disp." + lc.disposition)) : null, " ",
      el("span", { class: "muted small agent" }, t("pop.by") + " " + (lc.agent || "—")),
      el("div", { class: "notes" }, lc.notes || t("pop.no_notes")))) : [el("li", { class: "muted" }, t("pop.none"))]));
  }
  function tickWait() {
    if (!pop) return;
    const c = pop.call;
    let w = c.wait_s;
    if (c.queued_at && (pop.status === "ringing")) w = Math.max(0, Date.now() / 1000 + clockSkew - c.queued_at);
    $("call-wait").textContent = w == null ? "—" : Math.round(w) + t("unit.s");
  }
  setInterval(tickWait, 1000);

  /* ---------- wrap-up ---------- */
  // The form belongs to answered[0] until it is saved (and another answered call waits) or discarded.
  function nextWrap() {
    if (wrapTarget && wrapTarget.saved) {
      const i = answered.findIndex((x) => x.call.uniqueid === wrapTarget.uniqueid);
      if (i >= 0) answered.splice(i, 1);
    }
    const p = answered[0];
    wrapTarget = p ? { server: p.call.server, uniqueid: p.call.uniqueid, version: null, saved: false, pop: p } : null;
    $("wrapup-notes").value = ""; $("wrapup-status").textContent = "";
    renderWrapTarget();
  }
  function renderWrapTarget() {
    const w = wrapTarget;
    $("wrapup-call").textContent = w ? callerLabel(w.pop) + " · " + fmtTime(new Date((w.pop.call.ringing_at || Date.now() / 1000) * 1000).toISOString())
      + (answered.length > 1 ? " · " + t("wrapup.waiting") + " " + (answered.length - 1) : "") : t("wrapup.none");
    $("wrapup-save").disabled = !w; $("wrapup-discard").disabled = !w;
  }
  $("wrapup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const w = wrapTarget;
    if (!w) return;
    try {
      const r = await api("POST", "/api/calls/wrapup", { server: w.server, uniqueid: w.uniqueid, base_version: w.version,
        disposition: $("wrapup-disposition").value, notes: $("wrapup-notes").value });
      w.version = r.version; w.saved = true;
      $("wrapup-status").textContent = "✓ " + t(r.edited ? "wrapup.edited" : "wrapup.saved"); $("wrapup-status").className = "small ok-text";
      loadHistory();
      if (answered.length > 1) setTimeout(() => { if (wrapTarget === w && w.saved) nextWrap(); }, 1500);
    } catch (e) { $("wrapup-status").textContent = errText(e); $("wrapup-status").className = "small error"; }
  });
  $("wrapup-discard").addEventListener("click", () => {
    const w = wrapTarget;
    if (!w) return;
    if (!w.saved && $("wrapup-notes").value.trim() && !confirm(t("wrapup.discard_confirm"))) return;
    w.saved = true; nextWrap();
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
    } catch (e) { $("cf-status").textContent = errText(e); $("cf-status").className = "small error"; }
  });

  /* ---------- form validation: every error at once ----------
     Forms marked novalidate (ticket, customer, knowledge-base article, questions) are checked here before their own
     submit handler runs: every invalid field is listed under the form with its label, in the page's language. */
  function fieldErrors(form) {
    const out = [];
    for (const f of form.elements) {
      if (!f.willValidate || f.checkValidity()) continue;
      const label = f.closest("label"); const span = label && label.querySelector("[data-i18n]");
      const name = span ? span.textContent.trim() : (f.name || f.id);
      const v = f.validity;
      out.push(name + (lang === "zh" ? "：" : ": ") + t(v.valueMissing ? "form.required" : v.tooLong ? "form.too_long" : "form.invalid"));
    }
    return out;
  }
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.noValidate) return;
    let box = form.querySelector(".form-errors");
    const errs = fieldErrors(form);
    form.querySelectorAll(".invalid").forEach((n) => n.classList.remove("invalid"));
    if (!errs.length) { if (box) box.replaceChildren(); return; }
    ev.preventDefault(); ev.stopPropagation();  // capture phase: the form's own handler does not run
    for (const f of form.elements) if (f.willValidate && !f.checkValidity()) f.classList.add("invalid");
    if (!box) { box = el("ul", { class: "form-errors error small" }); form.append(box); }
    box.replaceChildren(...errs.map((m) => el("li", {}, m)));
  }, true);

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
        el("td", {}, queueName(r.queue)), el("td", {}, r.outcome ? t("outcome." + r.outcome) : "—"),
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
      el("td", {}, a.paused_reason ? (I18N[lang]["pause." + a.paused_reason] || a.paused_reason) : ""),
      el("td", {}, Object.keys(a.queues || {}).map(queueName).join(lang === "zh" ? "、" : ", "))));
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
    get me() { return me; }, errText, queueName, get pop() { return pop; }, get lang() { return lang; },
    get wrapPop() { return wrapTarget ? wrapTarget.pop : null; } };

  /* ---------- boot ---------- */
  applyLang();
  api("GET", "/api/me").then((d) => start(d.agent)).catch(() => showLogin());
})();
