"use strict";
/* The wallboard's intraday chart: bars of offered / answered / abandoned calls per 30 minutes, the staffing
   plan's forecast as a line, and the answer rate (right axis) against the target line. Drawn as SVG elements
   from board.intraday (numbers only, no markup from the server). window.CTI_WALLBOARD_CHART.draw(el, intraday). */
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 960, H = 280, L = 48, R = 48, T = 30, B = 48;
  const COLOR = { offered: "#8a97a8", answered: "#2fbf71", abandoned: "#e5484d", forecast: "#f5b700", answer_rate: "#4ea1ff", target: "#ffffff" };
  const t = (k, v) => (window.CTI_STATS_T ? window.CTI_STATS_T(k, v) : k);

  function node(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function niceMax(v) {
    if (v <= 0) return 5;
    const mag = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * mag) return m * mag;
    return 10 * mag;
  }

  function draw(container, data) {
    const rows = (data && data.intervals) || [];
    const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, class: "intraday", role: "img", "aria-label": t("chart.intraday") });
    svg.append(node("title", {}, t("chart.intraday")));
    svg.append(node("text", { x: L, y: 18, class: "chart-title" }, t("chart.intraday")));
    const pw = W - L - R, ph = H - T - B, n = Math.max(1, rows.length), bw = pw / n;
    const ymax = niceMax(Math.max(1, ...rows.map((r) => Math.max(r.offered, r.forecast || 0))));
    const y = (v) => T + ph - ph * v / ymax, yr = (v) => T + ph - ph * v;
    for (let i = 0; i <= 4; i++) {
      const v = ymax * i / 4;
      svg.append(node("line", { x1: L, x2: L + pw, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(node("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(+v.toFixed(1))));
      svg.append(node("text", { x: L + pw + 6, y: yr(i / 4) + 4, class: "axis" }, (25 * i) + "%"));
    }
    const step = Math.max(1, Math.ceil(n / 13));
    const fc = [], ar = [];
    rows.forEach((r, i) => {
      const x = L + bw * i;
      [["offered", 0.08], ["answered", 0.36], ["abandoned", 0.64]].forEach(([kind, off]) => {
        const v = r[kind];
        const rect = node("rect", { x: (x + bw * off).toFixed(1), y: y(v).toFixed(1), width: (bw * 0.27).toFixed(1),
          height: (ph * v / ymax).toFixed(1), fill: COLOR[kind], "data-kind": kind, "data-start": r.start, "data-value": v });
        rect.append(node("title", {}, `${r.start} ${t("chart." + kind)}: ${v}`));
        svg.append(rect);
      });
      const cx = (x + bw / 2).toFixed(1);
      if (r.forecast !== null && r.forecast !== undefined) {
        fc.push(`${cx},${y(r.forecast).toFixed(1)}`);
        svg.append(node("circle", { cx, cy: y(r.forecast).toFixed(1), r: 2.5, fill: COLOR.forecast, "data-kind": "forecast",
          "data-start": r.start, "data-value": r.forecast }));
      }
      if (r.answer_rate !== null && r.answer_rate !== undefined) {
        ar.push(`${cx},${yr(r.answer_rate).toFixed(1)}`);
        const c = node("circle", { cx, cy: yr(r.answer_rate).toFixed(1), r: 3.5, fill: COLOR.answer_rate, "data-kind": "answer_rate",
          "data-start": r.start, "data-value": r.answer_rate });
        c.append(node("title", {}, `${r.start} ${t("chart.answer_rate")}: ${(100 * r.answer_rate).toFixed(1)}%`));
        svg.append(c);
      }
      if (i % step === 0) svg.append(node("text", { x: cx, y: T + ph + 16, "text-anchor": "middle", class: "axis" }, r.start));
    });
    if (fc.length) svg.append(node("polyline", { points: fc.join(" "), fill: "none", stroke: COLOR.forecast, "stroke-width": 2, "data-kind": "forecast-line" }));
    if (ar.length) svg.append(node("polyline", { points: ar.join(" "), fill: "none", stroke: COLOR.answer_rate, "stroke-width": 2, "data-kind": "answer-rate-line" }));
    if (data && data.answer_target !== null && data.answer_target !== undefined) {
      const yt = yr(data.answer_target).toFixed(1);
      svg.append(node("line", { x1: L, x2: L + pw, y1: yt, y2: yt, stroke: COLOR.target, "stroke-width": 1.5, "stroke-dasharray": "6 4",
        "data-kind": "target", "data-value": data.answer_target }));
      svg.append(node("text", { x: L + pw - 4, y: Number(yt) - 4, "text-anchor": "end", class: "axis" },
        t("chart.target", { pct: Math.round(100 * data.answer_target) + "%" })));
    }
    let lx = L;
    for (const kind of ["offered", "answered", "abandoned", "forecast", "answer_rate"]) {
      svg.append(node("rect", { x: lx, y: H - 16, width: 12, height: 10, fill: COLOR[kind] }));
      const label = t("chart." + kind);
      svg.append(node("text", { x: lx + 16, y: H - 7, class: "legend" }, label));
      lx += 40 + 9 * label.length;
    }
    container.replaceChildren(svg);
    container.dataset.intervals = String(rows.length);
  }

  window.CTI_WALLBOARD_CHART = { draw };
})();
