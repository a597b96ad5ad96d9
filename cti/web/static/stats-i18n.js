"use strict";
/* Strings of the wallboard's intraday chart and of the reports page, merged into CTI_I18N (i18n.js). */
(function () {
  const zh = {
    "chart.intraday": "今日每 30 分钟来电", "chart.offered": "呼入", "chart.answered": "接听", "chart.abandoned": "放弃",
    "chart.forecast": "预测（排班计划）", "chart.answer_rate": "接通率", "chart.target": "目标 {pct}",
    "chart.calls": "来电数", "chart.no_data": "今日暂无来电",
    "rep.title": "报表", "rep.from": "开始日期", "rep.to": "结束日期", "rep.queue": "队列", "rep.all_queues": "全部队列",
    "rep.interval": "间隔（分钟）", "rep.show": "查询", "rep.csv": "导出 CSV", "rep.pdf": "导出 PDF",
    "rep.start": "时间段", "rep.offered": "呼入", "rep.answered": "接听", "rep.abandoned": "放弃",
    "rep.answer_rate": "接通率", "rep.service_level": "服务水平", "rep.aht": "平均通话时长", "rep.asa": "平均应答速度",
    "rep.total": "合计", "rep.empty": "该时段没有来电", "rep.tz": "时区", "rep.chart_traffic": "每时段呼入与接听", "rep.denied": "此页面仅供主管使用", "rep.login": "主管登录",
    "rep.username": "用户名", "rep.password": "密码", "rep.submit": "登录", "rep.bad": "用户名或密码错误",
    "rep.throttled": "失败次数过多，请稍后再试"
  };
  const en = {
    "chart.intraday": "Today per 30 minutes", "chart.offered": "Offered", "chart.answered": "Answered", "chart.abandoned": "Abandoned",
    "chart.forecast": "Forecast (staffing plan)", "chart.answer_rate": "Answer rate", "chart.target": "target {pct}",
    "chart.calls": "calls", "chart.no_data": "No calls yet today",
    "rep.title": "Reports", "rep.from": "From", "rep.to": "To", "rep.queue": "Queue", "rep.all_queues": "All queues",
    "rep.interval": "Interval (min)", "rep.show": "Show", "rep.csv": "Export CSV", "rep.pdf": "Export PDF",
    "rep.start": "Interval", "rep.offered": "Offered", "rep.answered": "Answered", "rep.abandoned": "Abandoned",
    "rep.answer_rate": "Answer rate", "rep.service_level": "Service level", "rep.aht": "Handling time", "rep.asa": "Speed of answer",
    "rep.total": "Total", "rep.empty": "No calls in this period", "rep.tz": "Time zone", "rep.chart_traffic": "Offered and answered per interval", "rep.denied": "This page is for supervisors", "rep.login": "Supervisor login",
    "rep.username": "Username", "rep.password": "Password", "rep.submit": "Log in", "rep.bad": "Wrong username or password",
    "rep.throttled": "Too many attempts, wait a moment."
  };
  const all = window.CTI_I18N = window.CTI_I18N || { zh: {}, en: {} };
  Object.assign(all.zh = all.zh || {}, zh);
  Object.assign(all.en = all.en || {}, en);
  /* The page language: the console's choice (localStorage cti.lang), else the browser's. */
  window.CTI_STATS_LANG = () => {
    let saved = null;
    try { saved = localStorage.getItem("cti.lang"); } catch (e) { /* storage off */ }
    return saved || ((navigator.language || "zh").startsWith("zh") ? "zh" : "en");
  };
  window.CTI_STATS_T = (key, vars) => {
    const lang = window.CTI_STATS_LANG();
    let s = (all[lang] && all[lang][key]) || all.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
    return s;
  };
})();
