"use strict";
/* cti console: complaint tickets (create from the pop / wrap-up, lists with SLA countdown, detail with history
   and actions) and the notifications of ticket and knowledge-base events. Uses window.CTI from console.js.
   Data is only ever set with textContent. */
(function () {
  const C = window.CTI;
  const $ = (id) => document.getElementById(id);
  const t = (k) => C.t(k);
  const el = C.el, show = C.show;
  const CATEGORIES = ["complaint", "repair", "billing", "safety", "inquiry"];
  const LINES = ["appliances", "mobile", "office"];
  const AWAITING = ["open", "reopened"];
  const TEXT_FIELD = { answer: "text", resolve: "note", close: "note", reopen: "reason" };

  let people = new Map();     // agent_id -> org person
  let serverOffset = 0;       // server clock - browser clock (s), from the websocket hello
  let view = "mine";
  let tickets = [];
  let current = null;         // the ticket shown in the detail pane
  let formCall = null;        // {server, uniqueid, customer} the ticket form is for
  const customerNames = new Map();
  const notes = [];

  const fill = (tpl, data) => tpl.replace(/\{(\w+)\}/g, (_, k) => (data[k] === undefined || data[k] === null ? "" : String(data[k])));
  const nameOf = (id) => { if (id == null) return "—"; const p = people.get(id); return p ? p.display_name : "#" + id; };
  const nowS = () => Date.now() / 1000 + serverOffset;

  /* ---------- SLA countdown ---------- */
  function hms(s) {
    s = Math.floor(Math.abs(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(sec).padStart(2, "0");
  }
  function renderClock(node) {
    const deadline = node.dataset.deadline, status = node.dataset.status;
    if (!deadline || !AWAITING.includes(status)) { node.textContent = "—"; node.className = "sla-clock stopped"; return; }
    const left = Date.parse(deadline) / 1000 - nowS();
    node.textContent = left >= 0 ? hms(left) : t("tk.overdue_by") + " " + hms(left);
    node.className = "sla-clock " + (left < 0 ? "late" : left < 3600 ? "soon" : "");
  }
  function clock(ticket) {
    const n = el("span", { class: "sla-clock" });
    n.dataset.deadline = ticket.sla_deadline || ""; n.dataset.status = ticket.status;
    renderClock(n);
    return n;
  }
  setInterval(() => document.querySelectorAll(".sla-clock[data-deadline]").forEach(renderClock), 1000);

  /* ---------- org chart (owner names, owner choices) ---------- */
  async function loadOrg() {
    try {
      const data = await C.api("GET", "/api/org");
      people = new Map(data.people.map((p) => [p.agent_id, p]));
    } catch (e) { people = new Map(); }
    document.dispatchEvent(new CustomEvent("cti:org", { detail: people }));
  }

  /* ---------- create from the pop / wrap-up ---------- */
  function popCustomer(p) { p = p || C.pop; return p && !p.unknown_caller && p.customer ? p.customer : null; }
  function syncButtons() {  // the wrap-up's button needs the call being wrapped up (the customer may be created later)
    $("wrapup-complaint").disabled = !C.wrapPop;
  }
  function options(select, values, label, selected) {
    select.replaceChildren(...values.map((v) => el("option", { value: v }, label(v))));
    if (selected !== undefined) select.value = selected;
  }
  function lineChoices(customer) {
    const owned = customer ? [...new Set(customer.products.map((p) => p.product_line))] : [];
    return [...owned, ...LINES.filter((l) => !owned.includes(l)), ""];
  }
  const lineLabel = (l) => (l ? t("line." + l) : t("line.none"));

  function openTicketForm(from) {  // from: the wrap-up's call; else the call on screen
    const p = from && from.call ? from : C.pop, cu = popCustomer(p);
    if (!p || !cu) { C.toast(t("tk.no_customer"), true); return; }
    formCall = { server: p.call.server, uniqueid: p.call.uniqueid, customer: cu };
    $("tf-call").textContent = p.call.uniqueid;
    $("tf-customer").textContent = cu.name;
    options($("tf-category"), CATEGORIES, (c) => t("cat." + c), "complaint");
    const lines = lineChoices(cu);
    const queueLine = LINES.includes(p.call.queue) ? p.call.queue : lines[0];
    options($("tf-line"), lines, lineLabel, queueLine);
    const owners = [...people.values()].filter((x) => !x.engineer && x.active).sort((a, b) => a.display_name.localeCompare(b.display_name));
    $("tf-owner").replaceChildren(el("option", { value: "" }, t("tk.owner_auto")),
      ...owners.map((x) => el("option", { value: String(x.agent_id) }, x.display_name + (x.department ? " · " + x.department : ""))));
    $("tf-description").value = ""; $("tf-status").textContent = ""; $("tf-save").disabled = false;
    show($("ticket-form"), true); C.selectTab("pop-tab"); $("tf-description").focus();
  }
  $("btn-complaint").addEventListener("click", openTicketForm);
  $("wrapup-complaint").addEventListener("click", () => openTicketForm(C.wrapPop));
  $("tf-cancel").addEventListener("click", () => show($("ticket-form"), false));
  $("ticket-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!formCall) return;
    $("tf-save").disabled = true;
    const owner = $("tf-owner").value;
    try {
      const ticket = await C.api("POST", "/api/tickets/from-call", {
        server: formCall.server, uniqueid: formCall.uniqueid, customer_id: formCall.customer.id,
        category: $("tf-category").value, product_line: $("tf-line").value || null,
        owner_id: owner ? Number(owner) : null, description: $("tf-description").value });
      customerNames.set(ticket.customer_id, formCall.customer.name);
      $("tf-status").textContent = "✓ " + t("tk.created") + " #" + ticket.id + " · " + t("tk.owner") + ": " + nameOf(ticket.owner_id);
      $("tf-status").className = "small ok-text";
      const p = C.pop;
      if (p && p.customer && p.customer.id === ticket.customer_id) {  // the pop's complaint flag at once
        p.open_complaints = [{ id: ticket.id, category: ticket.category, description: ticket.description, status: ticket.status,
          sla_deadline: ticket.sla_deadline, overdue: false }, ...(p.open_complaints || [])];
      }
      loadTickets();
      setTimeout(() => show($("ticket-form"), false), 2500);
    } catch (e) {
      $("tf-status").textContent = C.errText(e); $("tf-status").className = "small error"; $("tf-save").disabled = false;
    }
  });

  /* ---------- lists ---------- */
  const namesLoading = new Map();  // customer id -> pending lookup (one request per customer)
  function customerName(id) {
    if (customerNames.has(id)) return Promise.resolve(customerNames.get(id));
    if (!namesLoading.has(id)) {
      namesLoading.set(id, C.api("GET", "/api/customers/" + id).then((d) => d.customer.name, () => "#" + id).then((name) => {
        customerNames.set(id, name); namesLoading.delete(id); return name;
      }));
    }
    return namesLoading.get(id);
  }
  async function loadTickets() {
    if (!C.me) return;
    try {
      const data = await C.api("GET", "/api/tickets?view=" + encodeURIComponent(view) + "&limit=200");
      tickets = data.tickets;
    } catch (e) { tickets = []; }
    renderTickets();
    const missing = [...new Set(tickets.map((x) => x.customer_id))].filter((id) => !customerNames.has(id));
    if (missing.length) { await Promise.all(missing.map(customerName)); renderTickets(); }
  }
  function statusPill(status) { return el("span", { class: "pill st-" + status }, t("st." + status)); }
  function renderTickets() {
    const rows = tickets.map((x) => {
      const tr = el("tr", { class: current && current.id === x.id ? "selected" : "" },
        el("td", {}, el("b", {}, "#" + x.id)), el("td", {}, customerNames.get(x.customer_id) || "#" + x.customer_id),
        el("td", {}, t("cat." + x.category) === "cat." + x.category ? x.category : t("cat." + x.category)),
        el("td", {}, lineLabel(x.product_line || "")), el("td", {}, statusPill(x.status)), el("td", {}, nameOf(x.owner_id)),
        el("td", { class: x.escalation_level ? "level" : "" }, String(x.escalation_level)), el("td", {}, clock(x)));
      tr.dataset.id = String(x.id);
      tr.addEventListener("click", () => openTicket(x.id));
      return tr;
    });
    $("tickets-rows").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "8", class: "muted" }, t("tk.empty")))]));
  }
  document.querySelectorAll("#ticket-views [data-view]").forEach((b) => b.addEventListener("click", () => {
    view = b.dataset.view;
    document.querySelectorAll("#ticket-views [data-view]").forEach((x) => x.classList.toggle("active", x === b));
    loadTickets();
  }));
  document.querySelector(".tab[data-tab='tickets-tab']").addEventListener("click", loadTickets);

  /* ---------- detail ---------- */
  async function openTicket(id) {
    if ($("tickets-tab").classList.contains("hidden")) { C.selectTab("tickets-tab"); loadTickets(); }
    try { current = await C.api("GET", "/api/tickets/" + id); } catch (e) { C.toast(C.errText(e), true); return; }
    await customerName(current.customer_id);
    $("td-result").textContent = ""; $("td-text").value = "";
    renderDetail(); renderTickets();
  }
  function renderDetail() {
    const x = current;
    show($("td-empty"), !x); show($("td-body"), !!x);
    if (!x) return;
    $("td-title").textContent = "#" + x.id + " · " + (customerNames.get(x.customer_id) || "#" + x.customer_id);
    $("td-status").replaceWith(Object.assign(statusPill(x.status), { id: "td-status" }));
    const sla = $("td-sla"); sla.dataset.deadline = x.sla_deadline || ""; sla.dataset.status = x.status; renderClock(sla);
    $("td-meta").textContent = [t("cat." + x.category), lineLabel(x.product_line || ""), t("tk.owner") + ": " + nameOf(x.owner_id),
      t("tk.level") + " " + x.escalation_level, t("tk.created_at") + " " + C.fmtTime(x.created_at),
      x.call_id ? t("tk.linked") + " " + x.call_id : ""].filter(Boolean).join(" · ");
    $("td-description").textContent = x.description;
    show($("td-actions"), x.actions.length > 0);
    $("td-buttons").replaceChildren(...x.actions.map((a) => {
      const b = el("button", { type: "button", class: "btn " + (a === "answer" ? "primary" : a === "reopen" ? "warn" : ""), id: "td-act-" + a }, t("act." + a));
      b.addEventListener("click", () => act(a));
      return b;
    }));
    $("td-history").replaceChildren(...x.history.map((h) => el("li", {},
      el("span", { class: "when" }, C.fmtTime(h.at)), " ", el("b", {}, h.actor_id == null ? t("hist.system") : (h.actor || nameOf(h.actor_id))), " ",
      el("span", { class: "pill" }, t("hist." + h.action)),
      h.to_status && h.to_status !== h.from_status ? el("span", { class: "muted small" }, " → " + t("st." + h.to_status)) : null,
      h.to_owner_id && h.to_owner_id !== h.from_owner_id ? el("span", { class: "muted small" }, " → " + nameOf(h.to_owner_id)) : null,
      h.detail ? el("div", { class: "notes" }, h.detail) : null)));
  }
  async function act(action) {
    const body = {}; body[TEXT_FIELD[action]] = $("td-text").value;
    try {
      await C.api("POST", "/api/tickets/" + current.id + "/" + action, body);
      $("td-result").textContent = "✓ " + t("tk.done"); $("td-result").className = "small ok-text";
      const id = current.id; await openTicket(id); loadTickets();
    } catch (e) { $("td-result").textContent = C.errText(e); $("td-result").className = "small error"; }
  }

  /* ---------- notifications ---------- */
  function noteText(m) {
    const me = C.me;
    if (m.topic === "ticket.escalated") return fill(t(m.owner_id === me.id ? "notif.ticket.escalated.to_me" : "notif.ticket.escalated.from_me"), m);
    if (m.topic === "ticket.updated") return fill(t("notif.ticket.updated." + m.action), m);
    return fill(t("notif." + m.topic), m);
  }
  function renderNotes() {
    show($("notifications"), notes.length > 0);
    $("notif-list").replaceChildren(...notes.map((m) => {
      const kind = m.topic.startsWith("kb.") ? "kb" : m.topic.split(".")[1];
      const li = el("li", { class: "notif " + kind }, noteText(m), el("span", { class: "when" }, C.fmtTime(new Date(m.at * 1000).toISOString())));
      li.dataset.topic = m.topic;
      li.addEventListener("click", () => openNote(m));
      return li;
    }));
  }
  function openNote(m) {
    if (m.ticket_id && m.topic.startsWith("ticket.")) { openTicket(m.ticket_id); return; }
    const kb = window.CTI_KB;
    if (!kb) return;
    if (m.topic === "kb.published" && m.article_id) kb.openArticle(m.article_id);
    else if (m.question_id) kb.openQuestion(m.question_id, m.topic === "kb.answered" ? "asked" : "mine");
  }
  $("notif-clear").addEventListener("click", () => { notes.length = 0; renderNotes(); });

  /* ---------- console events ---------- */
  document.addEventListener("cti:start", () => {
    notes.length = 0; renderNotes(); current = null; renderDetail(); customerNames.clear();
    syncButtons(); loadOrg().then(loadTickets);
  });
  document.addEventListener("cti:lang", () => {
    if (!C.me) return;
    renderTickets(); renderDetail(); renderNotes();
  });
  document.addEventListener("cti:message", (ev) => {
    const m = ev.detail;
    if (m.type === "hello") serverOffset = (m.server_time || Date.now() / 1000) - Date.now() / 1000;
    else if (m.type === "screen_pop" || m.type === "call_update") syncButtons();
    else if (m.type === "notification") {
      notes.unshift(m); if (notes.length > 20) notes.pop();
      renderNotes(); C.toast(noteText(m));
      if (m.topic.startsWith("ticket.")) {
        if (!$("tickets-tab").classList.contains("hidden")) loadTickets();
        if (current && current.id === m.ticket_id) openTicket(m.ticket_id);
      }
    }
  });
  syncButtons();
  window.CTI_TICKETS = { open: openTicket, reload: loadTickets, people: () => people };
})();
