// The reports page: GET /api/reports for the table, the server's SVG chart, CSV and PDF links with the same query.
// Times come from the server already in the call center's zone (routing.timezone); values are set with textContent.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const t = (k, v) => window.CTI_STATS_T(k, v);
  const lang = () => window.CTI_STATS_LANG();
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
  const secs = (x) => (x === null || x === undefined ? "–" : Math.round(x) + " s");

  function translate() {
    document.documentElement.lang = lang();
    document.querySelectorAll("[data-t]").forEach((e) => { e.textContent = t(e.dataset.t); });
    $("f-queue").placeholder = t("rep.all_queues");
    document.title = "cti · " + t("rep.title");
  }

  function query() {
    const p = new URLSearchParams();
    if ($("f-from").value) p.set("from", $("f-from").value);
    if ($("f-to").value) p.set("to", $("f-to").value);
    if ($("f-queue").value.trim()) p.set("queue", $("f-queue").value.trim());
    p.set("interval", $("f-interval").value);
    p.set("lang", lang());
    return p.toString();
  }

  function row(cells, tag) {
    const tr = document.createElement("tr");
    for (const [c, field] of cells) {
      const td = document.createElement(tag || "td");
      td.textContent = c;
      if (field) td.dataset.field = field;
      tr.append(td);
    }
    return tr;
  }
  const cells = (l, label) => [[label, "label"], [String(l.offered), "offered"], [String(l.answered), "answered"],
    [String(l.abandoned), "abandoned"], [pct(l.answer_rate), "answer_rate"], [pct(l.service_level), "service_level"], [secs(l.aht_s), "aht_s"]];

  function render(data, q) {
    $("tz").textContent = t("rep.tz") + ": " + data.timezone;
    $("f-from").value = data.from; $("f-to").value = data.to;
    const head = ["rep.start", "rep.offered", "rep.answered", "rep.abandoned", "rep.answer_rate", "rep.service_level", "rep.aht"];
    $("report-table").tHead.replaceChildren(row(head.map((k) => [t(k)]), "th"));
    $("report-table").tBodies[0].replaceChildren(...data.lines.map((l) => {
      const tr = row(cells(l, l.label)); tr.dataset.start = l.start; return tr; }));
    $("report-table").tFoot.replaceChildren(row(cells(data.total, t("rep.total"))));
    $("empty").classList.toggle("hidden", data.lines.length > 0);
    $("chart-traffic").src = "/api/reports/chart.svg?" + q;
    $("chart-traffic").alt = t("rep.chart_traffic");
    $("export-csv").href = "/api/reports/export.csv?" + q;
    $("export-pdf").href = "/api/reports/export.pdf?" + q;
    document.body.dataset.loaded = q;
  }

  function show(view) {
    $("login-view").classList.toggle("hidden", view !== "login");
    $("report-view").classList.toggle("hidden", view !== "report");
  }

  let seq = 0;  // a slower earlier answer must not overwrite a later one
  async function load() {
    const q = query(), mine = ++seq;
    const r = await fetch("/api/reports?" + q, { credentials: "same-origin" });
    if (mine !== seq) return;
    if (r.status === 401 || r.status === 403) {
      show("login");
      if (r.status === 403) $("login-error").textContent = t("rep.denied");
      return;
    }
    if (!r.ok) throw new Error("reports: HTTP " + r.status);
    const data = await r.json();
    if (mine !== seq) return;
    render(data, q);
    show("report");
  }

  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    const r = await fetch("/api/login", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("login-username").value, password: $("login-password").value }) });
    if (!r.ok) { $("login-error").textContent = t(r.status === 429 ? "rep.throttled" : "rep.bad"); return; }
    load();
  });
  document.addEventListener("cti:lang", () => { translate(); load(); });
  translate();
  load().catch((e) => { $("login-error").textContent = String(e); show("login"); });
})();
