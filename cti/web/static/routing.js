// cti routing rules admin page (admin role). Values are rendered with textContent only.
// The HttpOnly cookie from /api/login authenticates every call; writes are same-origin.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const T = {
    zh: {
      "login.title": "路由规则 · 管理员登录", "login.username": "用户名", "login.password": "密码", "login.submit": "登录",
      "login.bad": "用户名或密码错误", "login.slow": "尝试次数过多，请稍候", "login.admin": "此页面仅限管理员",
      title: "路由规则", back: "坐席控制台", rules: "规则", add: "+ 添加", remove: "删除",
      "f.queues": "队列（逗号分隔）", "f.default_queue": "默认队列", "f.afterhours_queue": "下班后队列（空：默认队列）",
      "f.dids": "拨打号码 → 队列", "f.ivr": "IVR 按键 → 队列", "f.product_queues": "已购产品线 → 队列",
      "f.hours": "营业时间（空：休息）", "f.timezone": "时区", "f.default_language": "陌生来电语言",
      "f.holidays": "节假日，全天休息（每行一个 YYYY-MM-DD）", "f.priorities": "优先级", "f.base_priority": "基础",
      "f.vip_priority": "VIP 加成", "f.complaint_priority": "未结投诉加成", "f.crosssell": "交叉销售规则（JSON 列表，先匹配者生效）",
      comment: "修改说明", save: "校验并保存", saved: "已保存为版本 ", invalid: "规则有误，未保存：",
      "crosssell.json": "交叉销售规则不是有效的 JSON 列表",
      test: "测试来电", "t.callerid": "来电号码", "t.dialed": "拨打号码", "t.ivr": "IVR 按键（可选）",
      "t.at": "时间（可选，ISO 格式；空：现在）", "t.draft": "测试未保存的表单", "t.run": "现在走哪条路由？",
      "r.queue": "队列", "r.route": "路由", "r.action": "动作", "r.priority": "优先级", "r.number": "号码",
      "r.customer": "客户", "r.greeting": "问候语", "r.at": "当地时间", "r.unknown": "未找到客户",
      "r.holiday": "（节假日）", "r.closed": "（非营业时间）",
      versions: "版本", "v.by": "修改人", "v.at": "时间", "v.comment": "说明", "v.activate": "启用", "v.active": "当前",
      "v.config": "配置文件（未保存过）", version: "版本 ",
      days: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
      "err.invalid": "无效", "err.object": "应为对象", "err.unknown_field": "未知字段", "err.required": "必填",
      "err.queues_list": "应为非空的队列名列表（字母、数字、- 和 _）", "err.queue_twice": "有队列重复",
      "err.complaints_queue": "必须包含 complaints 队列（有未结投诉的来电进入该队列）",
      "err.unknown_queue": "未知队列“{value}”（不在队列列表中）", "err.language": "应为 zh 或 en",
      "err.phone": "应为电话号码（数字）", "err.number_twice": "号码重复", "err.ivr_digits": "应为 1-4 位按键（0-9、*、#）",
      "err.empty_line": "产品线为空", "err.priority": "应为 0 到 {max} 的整数",
      "err.timezone": "应为 IANA 时区，如 Asia/Shanghai", "err.unknown_timezone": "未知时区“{value}”",
      "err.hours": "应为 HH:MM-HH:MM", "err.dates": "应为日期列表（YYYY-MM-DD）", "err.date": "“{value}”：应为日期 YYYY-MM-DD",
      "err.date_twice": "{value} 重复", "err.crosssell_list": "交叉销售规则不是有效的 JSON 列表",
      "err.crosssell_rule": "交叉销售规则有误", "err.rule_twice": "规则编号“{value}”重复",
      "err.http": "请求失败（HTTP {status}）",
      "fl.rules": "规则", "fl.queues": "队列", "fl.default_queue": "默认队列", "fl.afterhours_queue": "下班后队列",
      "fl.default_language": "陌生来电语言", "fl.dids": "拨打号码", "fl.ivr": "IVR 按键", "fl.product_queues": "产品线",
      "fl.base_priority": "基础优先级", "fl.vip_priority": "VIP 加成", "fl.complaint_priority": "未结投诉加成",
      "fl.timezone": "时区", "fl.hours": "营业时间", "fl.holidays": "节假日", "fl.crosssell": "交叉销售规则", "fl.comment": "修改说明",
      "opt.zh": "中文 (zh)", "opt.en": "英文 (en)",
      "q.appliances": "家电", "q.mobile": "手机", "q.complaints": "投诉", "q.office": "办公", "q.sales": "销售",
      "route.afterhours": "非营业时间", "route.complaint": "未结投诉", "route.did": "拨打号码", "route.ivr": "IVR 选择",
      "route.product": "已购产品线", "route.menu": "语音菜单", "route.default": "默认",
      "action.queue": "进入队列", "action.ivr": "语音菜单", "action.afterhours": "非营业时间提示",
      "kind.mobile": "手机", "kind.landline": "固话", "kind.unknown": "未知",
    },
    en: {
      "login.title": "Routing rules · admin login", "login.username": "Username", "login.password": "Password",
      "login.submit": "Log in", "login.bad": "Wrong username or password.", "login.slow": "Too many attempts, wait a moment.",
      "login.admin": "This page is for administrators.",
      title: "Routing rules", back: "Console", rules: "Rules", add: "+ Add", remove: "Remove",
      "f.queues": "Queues (comma-separated)", "f.default_queue": "Default queue",
      "f.afterhours_queue": "After-hours queue (empty: default)", "f.dids": "Numbers dialed → queue",
      "f.ivr": "IVR digits → queue", "f.product_queues": "Product line owned → queue",
      "f.hours": "Business hours (empty: closed)", "f.timezone": "Time zone", "f.default_language": "Language of unknown callers",
      "f.holidays": "Holidays, closed all day (one YYYY-MM-DD a line)", "f.priorities": "Priorities", "f.base_priority": "Base",
      "f.vip_priority": "VIP bonus", "f.complaint_priority": "Open complaint bonus",
      "f.crosssell": "Cross-sell rules (JSON list; first match wins)",
      comment: "What changed (comment)", save: "Validate and save", saved: "Saved as version ",
      invalid: "Not saved, the rules have errors:", "crosssell.json": "The cross-sell rules are not a valid JSON list",
      test: "Test a caller", "t.callerid": "Caller ID", "t.dialed": "Number dialed", "t.ivr": "IVR digit (optional)",
      "t.at": "At (optional, ISO time; empty: now)", "t.draft": "Test the unsaved form", "t.run": "Which route now?",
      "r.queue": "Queue", "r.route": "Route", "r.action": "Action", "r.priority": "Priority", "r.number": "Number",
      "r.customer": "Customer", "r.greeting": "Greeting", "r.at": "Local time", "r.unknown": "no customer found",
      "r.holiday": " (holiday)", "r.closed": " (closed)",
      versions: "Versions", "v.by": "By", "v.at": "When", "v.comment": "Comment", "v.activate": "Activate",
      "v.active": "active", "v.config": "file config (never saved)", version: "version ",
      days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
      "err.invalid": "invalid", "err.object": "expected an object", "err.unknown_field": "unknown field", "err.required": "required",
      "err.queues_list": "expected a non-empty list of queue names (letters, digits, - and _)", "err.queue_twice": "a queue is listed twice",
      "err.complaints_queue": "must include 'complaints' (callers with an open complaint go there)",
      "err.unknown_queue": "unknown queue '{value}' (not in queues)", "err.language": "expected zh or en",
      "err.phone": "expected a phone number (digits)", "err.number_twice": "number listed twice", "err.ivr_digits": "expected 1-4 keypad digits (0-9, *, #)",
      "err.empty_line": "empty product line", "err.priority": "expected an integer 0..{max}",
      "err.timezone": "expected an IANA time zone such as Asia/Shanghai", "err.unknown_timezone": "unknown time zone '{value}'",
      "err.hours": "expected HH:MM-HH:MM", "err.dates": "expected a list of dates (YYYY-MM-DD)", "err.date": "'{value}': expected a date YYYY-MM-DD",
      "err.date_twice": "{value} listed twice", "err.crosssell_list": "The cross-sell rules are not a valid JSON list",
      "err.crosssell_rule": "invalid rule: {detail}", "err.rule_twice": "rule id '{value}' used twice",
      "err.http": "request failed (HTTP {status})",
      "opt.zh": "Chinese (zh)", "opt.en": "English (en)",
    },
  };
  let lang = localStorage.getItem("cti.lang") || ((navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en");
  if (!T[lang]) lang = "zh";
  const t = (k) => T[lang][k] ?? T.en[k] ?? k;
  let current = null; // the last rules document loaded or saved
  let info = null;
  let lastTest = null; // the last "test a caller" answer (shown again on a language switch)

  function applyLang() {
    document.documentElement.lang = lang;
    document.title = "cti · " + t("title");
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    if (lastTest) showTest(lastTest);
    document.querySelectorAll("[data-i18n-ph]").forEach((el) => { el.placeholder = t(el.dataset.i18nPh); });
    document.querySelectorAll("#hours .day-name").forEach((el, i) => { el.textContent = t("days")[i]; });
    document.querySelectorAll("table.kv .rm").forEach((el) => { el.textContent = t("remove"); });
    showVersion();
  }

  function show(view) {
    $("login-view").classList.toggle("hidden", view !== "login");
    $("main-view").classList.toggle("hidden", view !== "main");
  }

  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { status: r.status, ok: r.ok, data };
  }

  // -- key/value tables (dids, ivr, product_queues) -----------------------------------------
  function addRow(table, key, value) {
    const tr = document.createElement("tr");
    const k = document.createElement("input"); k.className = "k"; k.value = key ?? "";
    const v = document.createElement("input"); v.className = "v"; v.value = value ?? ""; v.setAttribute("list", "queue-list");
    const rm = document.createElement("button"); rm.type = "button"; rm.className = "btn small rm"; rm.textContent = t("remove");
    rm.addEventListener("click", () => tr.remove());
    for (const el of [k, v, rm]) { const td = document.createElement("td"); if (el === rm) td.className = "x"; td.appendChild(el); tr.appendChild(td); }
    $(table).querySelector("tbody").appendChild(tr);
    return tr;
  }
  function fillTable(table, obj) {
    $(table).querySelector("tbody").replaceChildren();
    for (const [k, v] of Object.entries(obj || {})) addRow(table, k, v);
  }
  function readTable(table) {
    const out = {};
    $(table).querySelectorAll("tbody tr").forEach((tr) => {
      const k = tr.querySelector(".k").value.trim();
      if (k) out[k] = tr.querySelector(".v").value.trim();
    });
    return out;
  }

  function buildHours() {
    const box = $("hours");
    box.replaceChildren();
    for (let d = 0; d < 7; d++) {
      const label = document.createElement("label");
      const name = document.createElement("span"); name.className = "day-name"; name.textContent = t("days")[d];
      const input = document.createElement("input"); input.id = `hours-${d}`; input.dataset.field = `hours.${d}`; input.placeholder = "08:00-20:30";
      label.append(name, input);
      box.appendChild(label);
    }
  }

  function refreshQueues() {
    const list = $("queue-list");
    list.replaceChildren();
    for (const q of $("f-queues").value.split(",").map((s) => s.trim()).filter(Boolean)) {
      const o = document.createElement("option"); o.value = q; list.appendChild(o);
    }
  }

  function fill(doc) {
    current = doc;
    $("f-queues").value = (doc.queues || []).join(", ");
    refreshQueues();
    for (const f of ["default_queue", "afterhours_queue", "timezone", "default_language", "base_priority", "vip_priority", "complaint_priority"]) {
      $(`f-${f}`).value = doc[f] ?? "";
    }
    fillTable("dids", doc.dids); fillTable("ivr", doc.ivr); fillTable("product_queues", doc.product_queues);
    for (let d = 0; d < 7; d++) $(`hours-${d}`).value = (doc.hours || {})[String(d)] || "";
    $("f-holidays").value = (doc.holidays || []).join("\n");
    $("f-crosssell").value = JSON.stringify(doc.crosssell || [], null, 2);
  }

  function num(id) { const v = $(id).value.trim(); return v === "" || isNaN(Number(v)) ? v : Number(v); }

  // the form as a rules document; cross-sell text that is not JSON is sent as the text itself, which the server
  // refuses with its field named together with every other error (nothing is saved)
  function read() {
    let crosssell;
    try { crosssell = JSON.parse($("f-crosssell").value || "[]"); } catch (e) { crosssell = $("f-crosssell").value; }
    const hours = {};
    for (let d = 0; d < 7; d++) { const v = $(`hours-${d}`).value.trim(); if (v) hours[String(d)] = v; }
    return {
      queues: $("f-queues").value.split(",").map((s) => s.trim()).filter(Boolean),
      default_queue: $("f-default_queue").value.trim(),
      afterhours_queue: $("f-afterhours_queue").value.trim(),
      default_language: $("f-default_language").value,
      dids: readTable("dids"), ivr: readTable("ivr"), product_queues: readTable("product_queues"),
      base_priority: num("f-base_priority"), vip_priority: num("f-vip_priority"), complaint_priority: num("f-complaint_priority"),
      timezone: $("f-timezone").value.trim(), hours,
      holidays: $("f-holidays").value.split(/\s+/).map((s) => s.trim()).filter(Boolean),
      crosssell,
    };
  }

  // an API field error {field, message, code, params} in the page's language (the English message for unknown codes)
  function errText(e) {
    const key = "err." + (e.code || "");
    const tpl = e.code && (T[lang][key] ?? T.en[key]);
    const msg = tpl ? tpl.replace(/\{(\w+)\}/g, (_, k) => String((e.params || {})[k] ?? "")) : (e.message || "");
    return e.field ? `${fieldName(e.field)}: ${msg}` : msg;
  }
  // a field of the rules document as the page names it: the API's name in English, its label in Chinese
  function fieldName(field) {
    const m = /^([a-z_]+)(?:\.(.*)|\[(\d+)\])?$/.exec(field);
    if (!m || !T[lang]["fl." + m[1]]) return field;
    const label = T[lang]["fl." + m[1]];
    if (m[1] === "hours" && m[2] !== undefined && t("days")[Number(m[2])]) return `${label} ${t("days")[Number(m[2])]}`;
    if (m[2] !== undefined) return `${label} ${m[2]}`;
    if (m[3] !== undefined) return `${label} #${Number(m[3]) + 1}`;
    return label;
  }
  // an identifier (queue, route, action, number kind) in the page's language; itself when the page has no word
  function word(prefix, id) { const k = prefix + "." + id; return T[lang][k] ?? id; }
  function failure(r) {
    return r.data && r.data.code ? errText(r.data) : t("err.http").replace("{status}", String(r.status));
  }

  function showErrors(errors) {
    const ul = $("errors");
    ul.replaceChildren();
    document.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
    for (const e of errors) {
      const li = document.createElement("li");
      li.textContent = errText(e);
      ul.appendChild(li);
      const top = (e.field || "").split(/[.[]/)[0];
      const el = document.querySelector(`[data-field="${CSS.escape(e.field || "")}"]`) || document.querySelector(`[data-field="${CSS.escape(top)}"]`);
      if (el) el.classList.add("invalid");
      if (["dids", "ivr", "product_queues"].includes(top)) {
        const key = e.field.slice(top.length + 1);
        $(top).querySelectorAll("tr").forEach((tr) => { if (tr.querySelector(".k").value.trim() === key) tr.querySelectorAll("input").forEach((i) => i.classList.add("invalid")); });
      }
    }
  }

  function showVersion() {
    if (!info) return;
    $("version-pill").textContent = info.version == null ? t("v.config") : t("version") + info.version;
  }

  async function loadVersions() {
    const r = await api("GET", "/api/routing/versions");
    const body = $("versions");
    body.replaceChildren();
    if (!r.ok) return;
    for (const v of r.data.versions) {
      const tr = document.createElement("tr");
      if (v.active) tr.className = "active";
      tr.dataset.version = v.version;
      const cells = [String(v.version), v.created_by, new Date(v.created_at).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB"), v.comment];
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
      const td = document.createElement("td");
      if (v.active) { td.textContent = t("v.active"); }
      else {
        const b = document.createElement("button"); b.type = "button"; b.className = "btn small activate"; b.textContent = t("v.activate");
        b.addEventListener("click", async () => {
          const res = await api("POST", `/api/routing/versions/${v.version}/activate`);
          if (res.ok) { info = res.data; fill(res.data.rules); showVersion(); showErrors([]); $("save-status").textContent = t("version") + v.version + " ✓"; await loadVersions(); }
          else showErrors((res.data && res.data.errors) || [{ message: failure(res) }]);
        });
        td.appendChild(b);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  async function load() {
    const r = await api("GET", "/api/routing/rules");
    if (r.status === 401 || r.status === 403) {
      show("login");
      if (r.status === 403) $("login-error").textContent = t("login.admin");
      return;
    }
    if (!r.ok) throw new Error(failure(r));
    info = r.data;
    fill(r.data.rules);
    showVersion();
    show("main");
    await loadVersions();
  }

  async function save(ev) {
    ev.preventDefault();
    $("save-status").textContent = "";
    const doc = read();
    $("save").disabled = true;
    try {
      const r = await api("PUT", "/api/routing/rules", { rules: doc, comment: $("f-comment").value.trim() });
      if (r.ok) {
        info = r.data; fill(r.data.rules); showVersion(); showErrors([]);
        $("f-comment").value = "";
        $("save-status").textContent = t("saved") + r.data.version;
        await loadVersions();
      } else if (r.status === 400 && r.data && r.data.errors) {
        showErrors(r.data.errors);
        const li = document.createElement("li"); li.textContent = t("invalid"); $("errors").prepend(li);
      } else {
        showErrors([{ message: failure(r) }]);
      }
    } finally { $("save").disabled = false; }
  }

  async function testCaller() {
    $("t-error").textContent = "";
    const body = { callerid: $("t-callerid").value.trim(), dialed: $("t-dialed").value.trim() };
    if ($("t-ivr").value.trim()) body.ivr_choice = $("t-ivr").value.trim();
    if ($("t-at").value.trim()) body.at = $("t-at").value.trim();
    if ($("t-draft").checked) body.rules = read();
    const r = await api("POST", "/api/routing/test", body);
    if (!r.ok) {
      $("t-result").classList.add("hidden");
      $("t-error").textContent = r.data && r.data.errors ? r.data.errors.map(errText).join("; ") : failure(r);
      return;
    }
    showTest(r.data);
  }

  function showTest(d) {
    lastTest = d;
    $("t-queue").textContent = word("q", d.decision.queue);
    $("t-route").textContent = word("route", d.decision.route);
    $("t-action").textContent = word("action", d.decision.action);
    $("t-priority").textContent = String(d.decision.priority);
    $("t-number").textContent = `${d.number.e164 || "—"} (${word("kind", d.number.kind)})`;
    $("t-customer").textContent = d.found
      ? `#${d.customer.customer_id} ${d.customer.name}${d.customer.vip ? " · VIP" : ""}${d.customer.open_complaint ? " · ⚠" : ""}`
      : t("r.unknown");
    $("t-greeting").textContent = d.decision.greeting;
    $("t-when").textContent = d.at.slice(0, 19).replace("T", " ") + (d.holiday ? t("r.holiday") : (d.open ? "" : t("r.closed")));
    $("t-result").classList.remove("hidden");
  }

  function setLang(l) { lang = l; localStorage.setItem("cti.lang", l); applyLang(); loadVersions().catch(() => {}); }

  document.addEventListener("DOMContentLoaded", () => {
    buildHours();
    applyLang();
    document.querySelectorAll(".lang-btn").forEach((b) => b.addEventListener("click", () => setLang(b.dataset.lang)));
    for (const tb of ["dids", "ivr", "product_queues"]) $(`${tb}-add`).addEventListener("click", () => addRow(tb, "", "").querySelector(".k").focus());
    $("f-queues").addEventListener("input", refreshQueues);
    $("rules-form").addEventListener("submit", save);
    $("t-run").addEventListener("click", () => testCaller().catch((e) => { $("t-error").textContent = String(e); }));
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("login-error").textContent = "";
      const r = await api("POST", "/api/login", { username: $("login-username").value, password: $("login-password").value });
      if (!r.ok) { $("login-error").textContent = r.status === 429 ? t("login.slow") : t("login.bad"); return; }
      if (r.data.agent.role !== "admin") { $("login-error").textContent = t("login.admin"); return; }
      $("who").textContent = r.data.agent.display_name || r.data.agent.username;
      await load();
    });
    api("GET", "/api/me").then((r) => { if (r.ok) $("who").textContent = r.data.agent.display_name || r.data.agent.username; }).catch(() => {});
    load().catch((e) => { show("login"); $("login-error").textContent = String(e); });
  });
})();
