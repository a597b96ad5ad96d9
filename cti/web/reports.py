"""The reports page for supervisors: interval figures from the ``calls`` table with charts, CSV and PDF export.

    add_report_routes(app, daemon, gate)   # from add_wallboard_routes

- ``GET /reports``: the page (static ``reports.html``/``.js``; strings in ``stats-i18n.js``);
- ``GET /api/reports``: ``{timezone, from, to, queue, interval_min, sl_seconds, lines: [line], total: line}``,
  a line ``{start, end (ISO 8601 in routing.timezone, to the second), label, offered, answered, abandoned,
  timeout, answer_rate, service_level, abandon_rate, aht_s, asa_s}``;
- ``GET /api/reports/chart.svg``: offered/answered per interval and the service level (:func:`traffic_svg`);
- ``GET /api/reports/export.csv``, ``GET /api/reports/export.pdf``: the same figures as a download.

Query (all optional): ``from``/``to`` local days ``YYYY-MM-DD`` (default today; at most :data:`MAX_DAYS`),
``queue``, ``interval`` (15, 30, 60), ``sl`` (1..600 s), ``lang`` (zh, en: chart and PDF). Supervisors and
admins only. Definitions are those of :mod:`cti.stats.reports` (a call belongs to the interval it entered).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from cti.stats.charts import traffic_svg
from cti.stats.reports import Stats, interval_report, load_calls, period_total, to_csv
from cti.stats.timefmt import local_iso, local_text
from cti.web.auth import SUPERVISORS, Gate, _error

MAX_DAYS = 31
INTERVALS = (15, 30, 60)

#: Strings of the chart and the PDF (the page's own are in static/stats-i18n.js).
TEXT: dict[str, dict[str, str]] = {
    "zh": {"title": "呼叫中心报表", "start": "时间段", "offered": "呼入", "answered": "接听", "abandoned": "放弃",
           "answer_rate": "接通率", "service_level": "服务水平", "aht": "平均通话时长", "total": "合计",
           "chart": "每时段呼入、接听与放弃", "empty": "该时段没有来电", "calls": "来电数",
           "traffic": "每时段呼入与接听", "period": "{start} 至 {end}（{tz}），{queue}，{interval} 分钟间隔",
           "all_queues": "全部队列"},
    "en": {"title": "Call center report", "start": "Interval", "offered": "Offered", "answered": "Answered",
           "abandoned": "Abandoned", "answer_rate": "Answer rate", "service_level": "Service level",
           "aht": "Handling time", "total": "Total", "chart": "Offered, answered and abandoned per interval",
           "empty": "No calls in this period", "calls": "calls", "traffic": "Offered and answered per interval",
           "period": "{start} to {end} ({tz}), {queue}, {interval}-minute intervals", "all_queues": "all queues"},
}


@dataclass(frozen=True)
class Query:
    """A checked report request."""

    first: date
    last: date
    queue: str | None
    interval_min: int
    sl_seconds: float
    lang: str


def parse_query(request: web.Request, tz: ZoneInfo, now: datetime | None = None) -> Query:
    """The query string as a :class:`Query`; 400 naming the field when a value is bad."""
    q = request.query
    today = (now or datetime.now(tz)).astimezone(tz).date()

    def day(name: str, default: date) -> date:
        raw = q.get(name) or ""
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise _error(web.HTTPBadRequest, f"{name}: a day YYYY-MM-DD") from None

    first = day("from", today)
    last = day("to", first)
    if last < first or (last - first).days >= MAX_DAYS:
        raise _error(web.HTTPBadRequest, f"to: on or after from, at most {MAX_DAYS} days")
    try:
        interval = int(q.get("interval") or 30)
        sl = float(q.get("sl") or 20)
    except ValueError:
        raise _error(web.HTTPBadRequest, "interval/sl: numbers") from None
    if interval not in INTERVALS:
        raise _error(web.HTTPBadRequest, "interval: 15, 30 or 60")
    if not 1 <= sl <= 600:
        raise _error(web.HTTPBadRequest, "sl: seconds between 1 and 600")
    lang = q.get("lang") or "en"
    if lang not in TEXT:
        raise _error(web.HTTPBadRequest, "lang: zh or en")
    return Query(first, last, (q.get("queue") or None), interval, sl, lang)


def _line(s: Stats, tz: ZoneInfo, with_date: bool) -> dict[str, Any]:
    return {"start": local_iso(s.start, tz), "end": local_iso(s.end, tz), "label": local_text(s.start, tz, with_date),
            "offered": s.offered, "answered": s.answered, "abandoned": s.abandoned, "timeout": s.timeout,
            "answer_rate": s.answer_rate, "service_level": s.service_level, "abandon_rate": s.abandon_rate,
            "aht_s": s.aht_s, "asa_s": s.asa_s}


class Reports:
    """Handlers of the reports page and its API."""

    def __init__(self, daemon: Any, gate: Gate) -> None:
        self.daemon = daemon
        self.gate = gate
        self.tz = ZoneInfo(daemon.settings.routing.timezone)

    async def _figures(self, request: web.Request) -> tuple[Query, list[Stats], Stats]:
        await self.gate.require(request, *SUPERVISORS)
        query = parse_query(request, self.tz)
        start = datetime.combine(query.first, time(0), tzinfo=self.tz)
        end = datetime.combine(query.last + timedelta(days=1), time(0), tzinfo=self.tz)
        rows = await load_calls(self.daemon.engine, start, end, query.queue)
        lines = [s for s in interval_report(rows, self.tz, query.interval_min, query.sl_seconds) if s.offered]
        return query, lines, period_total(rows, start, end, query.sl_seconds)

    async def page(self, request: web.Request) -> web.FileResponse:
        from cti.web.server import STATIC

        return web.FileResponse(STATIC / "reports.html")

    async def api(self, request: web.Request) -> web.Response:
        query, lines, total = await self._figures(request)
        multi = query.first != query.last
        resp = web.json_response({
            "timezone": self.tz.key, "from": query.first.isoformat(), "to": query.last.isoformat(), "queue": query.queue,
            "interval_min": query.interval_min, "sl_seconds": query.sl_seconds,
            "lines": [_line(s, self.tz, multi) for s in lines], "total": _line(total, self.tz, True)})
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def chart(self, request: web.Request) -> web.Response:
        query, lines, _total = await self._figures(request)
        t = TEXT[query.lang]
        svg = traffic_svg(lines, t["traffic"], "%m-%d %H:%M" if query.first != query.last else "%H:%M",
                          {"offered": t["offered"], "answered": t["answered"], "service_level": t["service_level"],
                           "calls": t["calls"]}, self.tz)
        return web.Response(text=svg, content_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    def _filename(self, query: Query, ext: str) -> str:
        span = query.first.isoformat() if query.first == query.last else f"{query.first}_{query.last}"
        return f"cti-report-{span}.{ext}"

    async def csv(self, request: web.Request) -> web.Response:
        query, lines, _total = await self._figures(request)
        return web.Response(text=to_csv(lines, self.tz), content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="{self._filename(query, "csv")}"', "Cache-Control": "no-store"})

    async def pdf(self, request: web.Request) -> web.Response:
        from cti.stats.pdf import report_pdf

        query, lines, total = await self._figures(request)
        t = TEXT[query.lang]
        multi = query.first != query.last
        subtitle = t["period"].format(start=query.first, end=query.last, tz=self.tz.key,
                                      queue=query.queue or t["all_queues"], interval=query.interval_min)
        labels = [local_text(s.start, self.tz, multi) for s in lines]
        body = await asyncio.to_thread(report_pdf, lines, total, labels, t, subtitle)  # CPU work off the loop
        return web.Response(body=body, content_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{self._filename(query, "pdf")}"', "Cache-Control": "no-store"})


def add_report_routes(app: web.Application, daemon: Any, gate: Gate) -> Reports:
    """Register ``/reports`` and ``/api/reports[...]`` on ``app``."""
    reports = Reports(daemon, gate)
    app.router.add_get("/reports", reports.page)
    app.router.add_get("/api/reports", reports.api)
    app.router.add_get("/api/reports/chart.svg", reports.chart)
    app.router.add_get("/api/reports/export.csv", reports.csv)
    app.router.add_get("/api/reports/export.pdf", reports.pdf)
    return reports
