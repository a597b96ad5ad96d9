// Preview dialing: the next follow-ups with the customer and the reasons, one click to dial,
// the outcome form keyed by the attempt the dial returned (never a typed customer id).
// Strings in Chinese and English (the console's choice, localStorage cti.lang); values set with textContent only.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const T = {
    zh: {
      title: "外呼回访", on_phone: "通话中：", calling: "拨打", outcome: "结果", notes: "备注",
      new_need: "新需求（转为客户所属经销商的商机）", opt_out: "客户要求不再来电", save: "保存结果", saved: "已保存。",
      "outcome.reached": "已联系上", "outcome.no_answer": "无人接听", "outcome.call_back_later": "稍后回电",
      "outcome.wrong_number": "号码错误", "outcome.refused": "拒绝",
      none: "暂无到期的回访。", dial: "拨打 {phone}", dialing: "正在拨号…", sep: "；",
      "reason.repair check": "维修回访", "reason.complaint resolved: is the customer satisfied": "投诉已解决：客户是否满意",
      "reason.new purchase: satisfaction and needs": "新购回访：满意度与需求", "reason.customer asked for a call back": "客户要求回电",
      "block.contact_cap": "已达联系次数上限", "block.not_open": "该回访已结束", "block.no_phone": "客户没有登记电话号码",
      "block.wrong_customer_phone": "该号码已不属于此客户", "block.opted_out": "客户已要求不再来电",
      "block.number_opted_out": "该号码在免打扰名单中", "block.dial_in_progress": "正在呼叫该客户",
      "block.not_due": "尚未到回访时间", "block.attempts_exhausted": "拨打次数已用完", "block.retry_wait": "上次无人接听，稍后再试",
      "block.center_hours": "不在呼叫中心外呼时间内", "block.customer_hours": "不在客户方便接听的时间内",
      "err.forbidden": "您无权执行此操作", "err.not_found": "未找到", "err.conflict": "无法拨打", "err.bad_request": "输入有误",
      "err.error": "操作失败",
    },
    en: {
      title: "Follow-ups", on_phone: "On the phone: ", calling: "Call", outcome: "Outcome", notes: "Notes",
      new_need: "New need (a lead for the customer's dealer)", opt_out: "the customer asks never to be called again",
      save: "Save outcome", saved: "Saved.",
      "outcome.reached": "reached", "outcome.no_answer": "no answer", "outcome.call_back_later": "call back later",
      "outcome.wrong_number": "wrong number", "outcome.refused": "refused",
      none: "No follow-up due.", dial: "Call {phone}", dialing: "dialing…", sep: "; ",
      "err.forbidden": "You may not do this", "err.not_found": "Not found", "err.conflict": "Cannot dial", "err.bad_request": "Invalid input",
      "err.error": "The request failed",
    },
  };
  let lang = null;
  try { lang = localStorage.getItem("cti.lang"); } catch (e) { /* storage off */ }
  if (lang !== "zh" && lang !== "en") lang = (navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en";
  const t = (k, vars) => {
    let s = T[lang][k] ?? T.en[k] ?? k;
    for (const [n, v] of Object.entries(vars || {})) s = s.split("{" + n + "}").join(String(v));
    return s;
  };
  let current = null; // {attempt_id, followup_id, customer_id, reasons}
  let currentCustomer = null;

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function el(tag, cls, value) { const e = document.createElement(tag); if (cls) e.className = cls; return text(e, value); }

  async function api(method, url, body) {
    const r = await fetch(url, { method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error(data.error || r.statusText); e.data = data;
      e.code = data.code || ({ 400: "bad_request", 403: "forbidden", 404: "not_found", 409: "conflict" })[r.status] || "error";
      throw e;
    }
    return data;
  }
  // Chinese text in Chinese, every other message in English as the server wrote it (it names the details)
  function errText(e) { return lang === "en" && e.message ? e.message : t("err." + (e.code || "error")); }
  function blockText(b) { return lang === "en" ? b.message : t("block." + b.code); }
  function reasonText(r) { const k = "reason." + r; const s = t(k); return s === k ? r : s; }
  function reasonsText(list) { return (list || []).map(reasonText).join(lang === "zh" ? "、" : " · "); }

  // a Chinese name is family + given + title without spaces (吴超先生); a Latin one title, given, family (Ms. Olivia Wilson)
  function name(c) {
    const parts = [c.family_name, c.given_name, c.title].map((x) => (x || "").trim());
    if (/[\u3400-\u9fff]/.test(parts.join(""))) return parts.join("");
    return [parts[2], parts[1], parts[0]].filter(Boolean).join(" ");
  }

  async function load() {
    const box = $("followups");
    const data = await api("GET", "/api/outbound/next");
    box.replaceChildren();
    if (!data.followups.length) box.append(el("p", "empty", t("none")));
    for (const p of data.followups) {
      const div = el("div", "fu");
      div.dataset.followup = p.followup.id;
      div.append(el("strong", "customer", name(p.customer)), el("span", "dealer", p.customer.dealer ? ` · ${p.customer.dealer}` : ""));
      div.append(el("p", "reasons", reasonsText(p.followup.reasons)));
      for (const ph of p.phones) {
        const row = el("div", "phone");
        const b = el("button", "dial", t("dial", { phone: ph.e164 }));
        b.disabled = !ph.allowed || current !== null;
        b.addEventListener("click", () => dial(p, ph.e164));
        row.append(b);
        for (const why of ph.blocked) { const d = el("div", "blocked", blockText(why)); d.dataset.code = why.code; row.append(d); }
        div.append(row);
      }
      box.append(div);
    }
  }

  function renderCurrent() {
    if (!current) return;
    text($("current-customer"), currentCustomer ? name(currentCustomer) : "");
    text($("current-reasons"), reasonsText(current.reasons));
    text($("current-phone"), current.phone);
    text($("current-state"), t("dialing"));
  }

  async function dial(p, phone) {
    text($("error"), "");
    $("saved").classList.add("hidden");
    try {
      const d = await api("POST", `/api/outbound/followups/${p.followup.id}/dial`, { phone });
      current = d; currentCustomer = p.customer;
      renderCurrent();
      $("current").classList.remove("hidden");
      $("current").dataset.attempt = d.attempt_id;
    } catch (e) {
      text($("error"), e.data && e.data.blocked ? e.data.blocked.map(blockText).join(t("sep")) : errText(e));
    }
    await load();
  }

  function applyLang() {
    document.documentElement.lang = lang;
    document.title = "cti · " + t("title");
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll(".lang-btn").forEach((b) => b.classList.toggle("active", b.dataset.lang === lang));
    renderCurrent();
  }
  document.querySelectorAll(".lang-btn").forEach((b) => b.addEventListener("click", () => {
    lang = b.dataset.lang;
    try { localStorage.setItem("cti.lang", lang); } catch (e) { /* storage off */ }
    applyLang();
    load().catch((e) => text($("error"), errText(e)));
  }));

  $("outcome-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current) return;
    try {
      await api("POST", `/api/outbound/attempts/${current.attempt_id}/outcome`, {
        outcome: $("outcome").value, notes: $("notes").value, new_need: $("new-need").value || null,
        opt_out: $("opt-out").checked });
      current = null; currentCustomer = null;
      $("current").classList.add("hidden");
      $("outcome-form").reset();
      $("saved").classList.remove("hidden");
    } catch (e) { text($("error"), errText(e)); }
    await load();
  });

  applyLang();
  load().catch((e) => text($("error"), errText(e)));
})();
