"use strict";
/* Strings of the wallboard (wallboard.js, wallboard.html), merged into CTI_I18N; CTI_WB_T(key, vars) in the page's
   language: the console's choice (localStorage cti.lang), else the browser's. */
(function () {
  const zh = {
    "wb.title": "800 热线 · 实时看板", "wb.login": "主管登录", "wb.username": "用户名", "wb.password": "密码", "wb.submit": "登录",
    "wb.bad": "用户名或密码错误", "wb.throttled": "尝试次数过多，请稍候", "wb.supervisors": "此页面仅供主管使用",
    "wb.http": "看板加载失败（HTTP {status}）", "wb.live": "实时推送",
    "wb.all_queues": "全部队列", "wb.waiting": "排队中", "wb.longest_wait": "最长等待", "wb.answered_today": "今日接通率",
    "wb.ready": "空闲", "wb.on_call": "通话中", "wb.ringing": "振铃中", "wb.wrap_up": "话后整理", "wb.paused": "暂停",
    "wb.unavailable": "不可用",
    "wb.offered": "呼入", "wb.answered": "接听", "wb.abandoned": "放弃", "wb.answer_rate": "接通率",
    "wb.service_level": "服务水平（{s} 秒）", "wb.abandon_rate": "放弃率", "wb.avg_wait": "平均等待", "wb.aht": "平均处理时长",
    "wb.today": "今日", "wb.last_hour": "最近一小时", "wb.sl_label": "服务水平：{s} 秒内接听", "wb.s": "{n} 秒",
    "queue.appliances": "家电", "queue.mobile": "手机", "queue.complaints": "投诉", "queue.office": "办公", "queue.sales": "销售"
  };
  const en = {
    "wb.title": "800 line · wallboard", "wb.login": "Supervisor login", "wb.username": "Username", "wb.password": "Password",
    "wb.submit": "Log in", "wb.bad": "Wrong username or password.", "wb.throttled": "Too many attempts, wait a moment.",
    "wb.supervisors": "This page is for supervisors.", "wb.http": "The wallboard did not load (HTTP {status})", "wb.live": "live stream",
    "wb.all_queues": "All queues", "wb.waiting": "waiting", "wb.longest_wait": "longest wait", "wb.answered_today": "answered today",
    "wb.ready": "ready", "wb.on_call": "on call", "wb.ringing": "ringing", "wb.wrap_up": "wrap-up", "wb.paused": "paused",
    "wb.unavailable": "unavailable",
    "wb.offered": "Offered", "wb.answered": "Answered", "wb.abandoned": "Abandoned", "wb.answer_rate": "Answer rate",
    "wb.service_level": "Service level ({s} s)", "wb.abandon_rate": "Abandon rate", "wb.avg_wait": "Average wait", "wb.aht": "Handling time",
    "wb.today": "Today", "wb.last_hour": "Last hour", "wb.sl_label": "service level: answered within {s} s", "wb.s": "{n} s",
    "queue.appliances": "appliances", "queue.mobile": "mobile", "queue.complaints": "complaints", "queue.office": "office", "queue.sales": "sales"
  };
  const all = window.CTI_I18N = window.CTI_I18N || { zh: {}, en: {} };
  Object.assign(all.zh = all.zh || {}, zh);
  Object.assign(all.en = all.en || {}, en);
  window.CTI_WB_LANG = () => {
    let saved = null;
    try { saved = localStorage.getItem("cti.lang"); } catch (e) { /* storage off */ }
    return saved === "zh" || saved === "en" ? saved : ((navigator.language || "zh").startsWith("zh") ? "zh" : "en");
  };
  window.CTI_WB_T = (key, vars) => {
    const lang = window.CTI_WB_LANG();
    let s = (all[lang] && all[lang][key]) || all.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.split("{" + k + "}").join(String(v));
    return s;
  };
})();
