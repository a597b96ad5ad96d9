"use strict";
/* cti console: knowledge base (search in Chinese or English, suggestions in the pop), "ask the back office",
   and the engineers' question queue whose approved answers become articles. Uses window.CTI from console.js.
   Data is only ever set with textContent. */
(function () {
  const C = window.CTI;
  const $ = (id) => document.getElementById(id);
  const t = (k) => C.t(k);
  const el = C.el, show = C.show;
  const LINES = ["appliances", "mobile", "office"];
  const lineLabel = (l) => (l ? t("line." + l) : t("line.none"));

  let qview = "mine";
  let questions = [];
  let currentQ = null;
  let lastResults = [];
  let suggested = [];
  let currentArticle = null;

  function peopleName(id) {
    const people = window.CTI_TICKETS ? window.CTI_TICKETS.people() : new Map();
    if (id == null) return "—";
    const p = people.get(id); return p ? p.display_name : "#" + id;
  }
  function articleItem(a, onOpen) {
    const li = el("li", { class: currentArticle && currentArticle.id === a.id ? "selected" : "" },
      el("div", { class: "title" }, a.title),
      el("div", {}, a.product_line ? el("span", { class: "tag" }, lineLabel(a.product_line)) : null,
        ...(a.tags || []).filter((x) => !x.startsWith("ivr:")).map((x) => el("span", { class: "tag" }, x))),
      a.snippet ? el("div", { class: "snippet" }, a.snippet) : null);
    li.dataset.id = String(a.id);
    li.addEventListener("click", () => onOpen(a.id));
    return li;
  }

  /* ---------- suggestions in the pop ---------- */
  async function suggest(pop) {
    const cu = pop && !pop.unknown_caller ? pop.customer : null;
    if (!cu) { suggested = []; renderSuggested(); return; }
    const q = new URLSearchParams();
    [...new Set(cu.products.map((p) => p.product_line))].forEach((l) => q.append("product_line", l));
    if (pop.call.ivr_choice) q.set("ivr", pop.call.ivr_choice);
    q.set("limit", "3");
    try { suggested = (await C.api("GET", "/api/kb/suggest?" + q.toString())).articles; } catch (e) { suggested = []; }
    renderSuggested();
  }
  function renderSuggested() {
    show($("kb-suggest-section"), suggested.length > 0);
    $("kb-suggest").replaceChildren(...suggested.map((a) => articleItem(a, openArticle)));
  }

  /* ---------- search + article ---------- */
  async function search() {
    const q = $("kb-q").value.trim();
    if (!q) { lastResults = []; renderResults(); return; }
    const params = new URLSearchParams({ q, limit: "20" });
    if ($("kb-line").value) params.set("product_line", $("kb-line").value);
    try { lastResults = (await C.api("GET", "/api/kb/search?" + params.toString())).articles; } catch (e) { C.toast(C.errText(e), true); lastResults = []; }
    renderResults();
  }
  function renderResults() {
    const items = lastResults.map((a) => articleItem(a, openArticle));
    $("kb-results").replaceChildren(...(items.length ? items : $("kb-q").value.trim() ? [el("li", { class: "muted" }, t("kb.empty"))] : []));
  }
  $("kb-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
  async function openArticle(id) {
    try { currentArticle = await C.api("GET", "/api/kb/articles/" + id); } catch (e) { C.toast(C.errText(e), true); return; }
    C.selectTab("kb-tab");
    show($("kb-article"), true);
    $("kb-article-title").textContent = currentArticle.title;
    $("kb-article-meta").textContent = [lineLabel(currentArticle.product_line || ""), ...(currentArticle.tags || []),
      C.fmtTime(currentArticle.updated_at)].join(" · ");
    $("kb-article-body").textContent = currentArticle.body;
    renderResults();
  }

  /* ---------- write articles (supervisors, admins, back-office engineers; the server checks) ---------- */
  let editing = null;  // article id, or null for a new one
  function openEditor(article) {
    editing = article ? article.id : null;
    $("ke-heading").textContent = t(article ? "kb.edit_title" : "kb.new_title");
    $("ke-line").replaceChildren(el("option", { value: "" }, lineLabel("")), ...LINES.map((l) => el("option", { value: l }, lineLabel(l))));
    $("ke-title").value = article ? article.title : $("kb-q").value.trim();
    $("ke-body").value = article ? article.body : "";
    $("ke-line").value = article ? article.product_line || "" : $("kb-line").value;
    $("ke-tags").value = article ? (article.tags || []).join(" ") : "";
    $("ke-status").textContent = ""; show($("kb-editor"), true); $("ke-title").focus();
  }
  $("kb-new").addEventListener("click", () => openEditor(null));
  $("kb-edit").addEventListener("click", () => currentArticle && openEditor(currentArticle));
  $("ke-cancel").addEventListener("click", () => show($("kb-editor"), false));
  $("kb-editor").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { title: $("ke-title").value, body: $("ke-body").value, product_line: $("ke-line").value || null, tags: $("ke-tags").value };
    try {
      const saved = editing ? await C.api("PUT", "/api/kb/articles/" + editing, body) : await C.api("POST", "/api/kb/articles", body);
      $("ke-status").textContent = "✓ " + t("kb.saved"); $("ke-status").className = "small ok-text";
      await openArticle(saved.id);
      setTimeout(() => show($("kb-editor"), false), 1200);
    } catch (e) { $("ke-status").textContent = C.errText(e); $("ke-status").className = "small error"; }
  });

  /* ---------- ask the back office ---------- */
  function openAsk(text) {
    const pop = C.pop, cu = pop && !pop.unknown_caller ? pop.customer : null;
    const owned = cu ? [...new Set(cu.products.map((p) => p.product_line))] : [];
    const lines = [...owned, ...LINES.filter((l) => !owned.includes(l)), ""];
    $("ask-line").replaceChildren(...lines.map((l) => el("option", { value: l }, lineLabel(l))));
    if (pop && LINES.includes(pop.call.queue)) $("ask-line").value = pop.call.queue;
    $("ask-question").value = text || "";
    $("ask-status").textContent = ""; $("ask-submit").disabled = false;
    C.selectTab("pop-tab"); show($("ask-form"), true); $("ask-question").focus();
  }
  $("btn-ask").addEventListener("click", () => openAsk(""));
  $("kb-ask").addEventListener("click", () => openAsk($("kb-q").value.trim()));
  $("ask-cancel").addEventListener("click", () => show($("ask-form"), false));
  $("ask-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const pop = C.pop, cu = pop && !pop.unknown_caller ? pop.customer : null;
    $("ask-submit").disabled = true;
    try {
      const q = await C.api("POST", "/api/kb/questions", { question: $("ask-question").value,
        product_line: $("ask-line").value || null, customer_id: cu ? cu.id : null });
      $("ask-status").textContent = "✓ #" + q.id + " · " + t("kb.asked") + " (" + t("q.engineer") + ": " + peopleName(q.owner_id) + ")";
      $("ask-status").className = "small ok-text";
      setTimeout(() => show($("ask-form"), false), 2500);
    } catch (e) { $("ask-status").textContent = C.errText(e); $("ask-status").className = "small error"; $("ask-submit").disabled = false; }
  });

  /* ---------- the engineers' question queue ---------- */
  async function loadQuestions() {
    if (!C.me) return;
    try { questions = (await C.api("GET", "/api/kb/questions?view=" + encodeURIComponent(qview))).questions; } catch (e) { questions = []; }
    renderQuestions();
  }
  function setView(v) {
    qview = v;
    document.querySelectorAll("#question-views [data-view]").forEach((x) => x.classList.toggle("active", x.dataset.view === v));
  }
  function renderQuestions() {
    const items = questions.map((q) => {
      const li = el("li", { class: currentQ && currentQ.id === q.id ? "selected" : "" },
        el("div", { class: "title" }, "#" + q.id + " " + q.question),
        el("div", {}, el("span", { class: "tag" }, t("q.status." + q.status)), q.product_line ? el("span", { class: "tag" }, lineLabel(q.product_line)) : null,
          el("span", { class: "snippet" }, t("q.engineer") + ": " + peopleName(q.owner_id) + " · " + t("tk.sla") + " "),
          q.status === "open" ? slaClock(q) : null));
      li.dataset.id = String(q.id);
      li.addEventListener("click", () => openQuestion(q.id));
      return li;
    });
    $("questions-rows").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, t("q.empty"))]));
  }
  function slaClock(q) {
    const n = el("span", { class: "sla-clock" }); n.dataset.deadline = q.sla_deadline || ""; n.dataset.status = "open"; return n;
  }
  async function openQuestion(id, v) {
    if (v && v !== qview) { setView(v); }
    if ($("questions-tab").classList.contains("hidden")) { C.selectTab("questions-tab"); }
    try { currentQ = await C.api("GET", "/api/kb/questions/" + id); } catch (e) { C.toast(C.errText(e), true); return; }
    $("qd-result").textContent = "";
    renderQuestion(); loadQuestions();
  }
  function renderQuestion() {
    const q = currentQ;
    show($("qd-empty"), !q); show($("qd-body"), !!q);
    if (!q) return;
    $("qd-title").textContent = "#" + q.id + " " + q.question;
    $("qd-meta").textContent = [t("q.status." + q.status), lineLabel(q.product_line || ""), t("q.asked_by") + ": " + peopleName(q.asked_by),
      t("q.engineer") + ": " + peopleName(q.owner_id), C.fmtTime(q.created_at)].join(" · ");
    show($("qd-answer"), !!q.answer);
    $("qd-answer").textContent = q.answer || "";
    show($("qd-answer-form"), q.status === "open");
    $("qd-answer-text").value = "";
    show($("qd-approve-form"), q.status === "answered");
    $("qd-approve-title").value = q.question.slice(0, 200);
  }
  async function qAction(path, body) {
    try {
      currentQ = await C.api("POST", "/api/kb/questions/" + currentQ.id + "/" + path, body);
      $("qd-result").textContent = "✓"; $("qd-result").className = "small ok-text";
    } catch (e) { $("qd-result").textContent = C.errText(e); $("qd-result").className = "small error"; return false; }
    return true;
  }
  $("qd-answer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (await qAction("answer", { answer: $("qd-answer-text").value })) { renderQuestion(); loadQuestions(); }
  });
  $("qd-approve-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = currentQ.id;
    try {
      const article = await C.api("POST", "/api/kb/questions/" + id + "/approve", { title: $("qd-approve-title").value });
      currentQ = await C.api("GET", "/api/kb/questions/" + id);
      renderQuestion(); loadQuestions();
      $("qd-result").textContent = "✓ " + article.title; $("qd-result").className = "small ok-text";
    } catch (e) { $("qd-result").textContent = C.errText(e); $("qd-result").className = "small error"; }
  });
  $("qd-reject").addEventListener("click", async () => {
    const reason = window.prompt(t("q.reason")) || "";
    if (reason && await qAction("reject", { reason })) { renderQuestion(); loadQuestions(); }
  });
  document.querySelectorAll("#question-views [data-view]").forEach((b) => b.addEventListener("click", () => { setView(b.dataset.view); loadQuestions(); }));
  document.querySelector(".tab[data-tab='questions-tab']").addEventListener("click", loadQuestions);

  /* ---------- console events ---------- */
  function fillLines() {
    const cur = $("kb-line").value;
    $("kb-line").replaceChildren(el("option", { value: "" }, t("kb.all_lines")), ...LINES.map((l) => el("option", { value: l }, lineLabel(l))));
    $("kb-line").value = cur;
  }
  document.addEventListener("cti:start", () => {
    currentQ = null; currentArticle = null; suggested = []; lastResults = [];
    fillLines(); renderSuggested(); renderResults(); renderQuestion(); show($("kb-article"), false); show($("kb-editor"), false);
    document.querySelectorAll(".kb-editor").forEach((n) => show(n, false));
    // engineers start on their queue, everyone else on the questions they asked
    setView("asked");
  });
  document.addEventListener("cti:org", (ev) => {
    const me = C.me, person = me && ev.detail.get(me.id);
    setView(person && person.engineer ? "mine" : me && me.role !== "agent" ? "answered" : "asked");
    const editor = !!me && (me.role !== "agent" || !!(person && person.engineer));
    document.querySelectorAll(".kb-editor").forEach((n) => show(n, editor));
  });
  document.addEventListener("cti:lang", () => {
    if (!C.me) return;
    fillLines(); renderSuggested(); renderResults(); renderQuestions(); renderQuestion();
  });
  document.addEventListener("cti:message", (ev) => {
    const m = ev.detail;
    if (m.type === "screen_pop") suggest(m);
    else if (m.type === "notification" && m.topic.startsWith("kb.")) {
      if (!$("questions-tab").classList.contains("hidden")) loadQuestions();
      if (currentQ && currentQ.id === m.question_id) openQuestion(m.question_id);
    }
  });
  fillLines();
  window.CTI_KB = { openArticle, openQuestion, search };
})();
