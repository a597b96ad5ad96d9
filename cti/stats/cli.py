"""``cti staffing`` (Erlang C/A calculator, shift plan) and ``cti reports`` (CSV and SVG from the calls table)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Callable, Sequence
from zoneinfo import ZoneInfo

import click

# Light imports only: every ``cti`` command loads this module; numpy/scipy load when a command runs.
from cti.stats.profile import DEFAULT_PATIENCE_S, SEED_AHT_S, SEED_DAILY_CALLS, seed_day


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _fraction(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Accept 0.8 or 80 for 80%."""
    if value is None:
        return None
    v = value / 100 if value > 1 else value
    if not 0 <= v < 1:
        raise click.BadParameter("a share below 1 (0.8) or a percentage below 100 (80)")
    return v


def _hhmm(ctx: click.Context, param: click.Parameter, value: str | None) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HH:MM") from None


def _lengths(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        out = tuple(float(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter("comma-separated hours, e.g. 12,8,6") from None
    if not out or any(x <= 0 for x in out):
        raise click.BadParameter("comma-separated positive hours, e.g. 12,8,6")
    return out


@click.group()
def staffing() -> None:
    """Agents needed per interval (Erlang C and Erlang A) and shift plans."""


@staffing.command("erlang")
@click.option("--calls", type=click.FloatRange(min=0), required=True, help="Calls offered in the interval.")
@click.option("--interval-min", type=click.FloatRange(min=0, min_open=True), default=30, show_default=True)
@click.option("--aht-s", type=click.FloatRange(min=0, min_open=True), required=True, help="Average handling time, seconds.")
@click.option("--sl-target", type=float, default=0.8, show_default=True, callback=_fraction, help="Service-level target (0.8 or 80).")
@click.option("--sl-seconds", type=click.FloatRange(min=0), default=20, show_default=True)
@click.option("--shrinkage", type=float, default=0.0, show_default=True, callback=_fraction, help="Share of paid time off the phones.")
@click.option("--max-occupancy", type=float, default=None, callback=_fraction)
@click.option("--patience-s", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_PATIENCE_S, show_default=True, help="Callers' mean patience (Erlang A).")
@click.option("--answer-target", type=float, default=0.8, show_default=True, callback=_fraction, help="Answer-rate target (Erlang A).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def erlang_cmd(
    calls: float, interval_min: float, aht_s: float, sl_target: float, sl_seconds: float, shrinkage: float,
    max_occupancy: float | None, patience_s: float, answer_target: float, as_json: bool,
) -> None:
    """Agents required for one interval, by Erlang C (service level) and by Erlang A (answer rate)."""
    from cti.stats import erlang, erlang_a

    interval_s = interval_min * 60
    traffic = erlang.traffic_intensity(calls, interval_s, aht_s)
    c = erlang.agents_required(traffic, aht_s, sl_target, sl_seconds, max_occupancy, shrinkage)
    a_at_c = erlang_a.evaluate(c.agents, calls, interval_s, aht_s, patience_s, sl_seconds, shrinkage)
    a = erlang_a.agents_required(calls, interval_s, aht_s, answer_target, patience_s, sl_seconds=sl_seconds, shrinkage=shrinkage)
    if as_json:
        click.echo(json.dumps({"traffic_erlangs": traffic, "erlang_c": asdict(c), "erlang_a_at_erlang_c_agents": asdict(a_at_c), "erlang_a": asdict(a)}, indent=2))
        return
    click.echo(f"Offered: {calls:g} calls in {interval_min:g} min, AHT {aht_s:g} s = {traffic:.2f} Erlangs")
    click.echo(
        f"[erlang_c] {c.agents} agents on the phones ({c.scheduled} rostered with {_pct(shrinkage)} shrinkage) "
        f"for {_pct(sl_target)} answered within {sl_seconds:g} s"
    )
    click.echo(
        f"[erlang_c]   service level {_pct(c.service_level)} within {sl_seconds:g} s, ASA {c.asa_s:.1f} s, "
        f"P(wait) {_pct(c.wait_probability)}, occupancy {_pct(c.occupancy)} (callers never hang up)"
    )
    click.echo(
        f"[erlang_a]   with those {c.agents} agents and {patience_s:g} s mean patience: answer rate {_pct(a_at_c.answer_rate)}, "
        f"abandoned {_pct(a_at_c.abandon_probability)}, service level {_pct(a_at_c.service_level)}"
    )
    click.echo(
        f"[erlang_a] {a.agents} agents on the phones ({a.scheduled} rostered) for a {_pct(answer_target)} answer rate "
        f"with {patience_s:g} s mean patience"
    )
    click.echo(
        f"[erlang_a]   answer rate {_pct(a.answer_rate)}, abandoned {_pct(a.abandon_probability)}, service level "
        f"{_pct(a.service_level)} within {sl_seconds:g} s, ASA {a.asa_s:.1f} s, occupancy {_pct(a.occupancy)}"
    )


def _engine_and_tz(ctx: click.Context) -> tuple[Any, ZoneInfo]:
    from cti.db.engine import create_engine

    settings = ctx.obj.settings
    return create_engine(settings.database.url), ZoneInfo(settings.routing.timezone)


async def _history_slots(
    ctx: click.Context, day: date, weeks: int, interval_min: int, uplift_file: str | None, queue: str | None,
    open_: time, close: time,
) -> tuple[list[tuple[time, float]], float | None]:
    from cti.stats.forecast import forecast_day, load_mean_talk_s, load_offered_times, read_uplifts

    engine, tz = _engine_and_tz(ctx)
    try:
        start = datetime.combine(day - timedelta(days=7 * weeks), time(0), tzinfo=tz)
        end = datetime.combine(day, time(0), tzinfo=tz)
        times = await load_offered_times(engine, start, end, queue)
        aht = await load_mean_talk_s(engine, start, end, queue)
    finally:
        await engine.dispose()
    uplifts = []
    if uplift_file:
        with open(uplift_file, newline="", encoding="utf-8") as f:
            uplifts = read_uplifts(f)
    fc = forecast_day(times, day, tz, interval_min, weeks, uplifts=uplifts, open_=open_, close=close)
    return [(f.start.time().replace(tzinfo=None), f.calls) for f in fc], aht


@staffing.command("plan")
@click.option("--seed", "source", flag_value="seed", default=True, help="The seed's 800-line day (default).")
@click.option("--from-history", "source", flag_value="history", help="Forecast from the calls table (same weekday, recent weeks).")
@click.option("--forecast-file", type=click.Path(exists=True, dir_okay=False), help="CSV with columns start (HH:MM), calls.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Day to plan (history: default tomorrow).")
@click.option("--weeks", type=click.IntRange(1, 52), default=4, show_default=True, help="Weeks of history (same weekday).")
@click.option("--uplift-file", type=click.Path(exists=True, dir_okay=False), help="CSV date,factor[,start,end,note] of marketing events.")
@click.option("--queue", default=None, help="Plan one queue from history (default: all).")
@click.option("--daily-calls", type=click.FloatRange(min=0), default=SEED_DAILY_CALLS, show_default=True, help="With --seed.")
@click.option("--interval-min", type=click.Choice(["15", "30", "60"]), default="30", show_default=True)
@click.option("--open", "open_", default="08:00", show_default=True, callback=_hhmm)
@click.option("--close", default="20:30", show_default=True, callback=_hhmm)
@click.option("--aht-s", type=click.FloatRange(min=0, min_open=True), default=None, help=f"Default: history's mean talk time, else {SEED_AHT_S:g}.")
@click.option("--model", type=click.Choice(["erlang_a", "erlang_c"]), default="erlang_a", show_default=True, help="Requirement the shifts cover.")
@click.option("--answer-target", type=float, default=0.8, show_default=True, callback=_fraction)
@click.option("--patience-s", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_PATIENCE_S, show_default=True)
@click.option("--sl-target", type=float, default=0.8, show_default=True, callback=_fraction)
@click.option("--sl-seconds", type=click.FloatRange(min=0), default=20, show_default=True)
@click.option("--erlang-a-sl", is_flag=True, help="Erlang A must also meet the service-level target.")
@click.option("--shrinkage", type=float, default=0.0, show_default=True, callback=_fraction)
@click.option("--max-occupancy", type=float, default=None, callback=_fraction, help="Cap on agents' occupancy (both models).")
@click.option("--shift-lengths", default="12,8,6", show_default=True, callback=_lengths, help="Allowed shift lengths, hours.")
@click.option("--start-step-min", type=click.IntRange(min=1), default=30, show_default=True, help="Shifts start on this grid.")
@click.option("--seats", type=click.IntRange(min=1), default=None, help="Desks available (default: fewest that admit a plan).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True), default=None, help="Write the per-interval table as CSV ('-' for stdout).")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False), default=None, help="Write the requirement vs coverage chart.")
@click.pass_context
def plan_cmd(
    ctx: click.Context, source: str, forecast_file: str | None, day: datetime | None, weeks: int, uplift_file: str | None,
    queue: str | None, daily_calls: float, interval_min: str, open_: time, close: time, aht_s: float | None, model: str,
    answer_target: float, patience_s: float, sl_target: float, sl_seconds: float, erlang_a_sl: bool, shrinkage: float,
    max_occupancy: float | None, shift_lengths: tuple[float, ...], start_step_min: int, seats: int | None, csv_path: str | None, svg_path: str | None,
) -> None:
    """Forecast, agents per interval (Erlang A and Erlang C), and shifts that cover them at least paid hours."""
    from cti.cli import run
    from cti.stats.forecast import read_forecast
    from cti.stats.staffing import StaffingParams, plan_day

    imin = int(interval_min)
    if forecast_file:
        with open(forecast_file, newline="", encoding="utf-8") as f:
            slots = read_forecast(f)
        label = f"forecast file {forecast_file}"
    elif source == "history":
        target = day.date() if day else datetime.now(ZoneInfo(ctx.obj.settings.routing.timezone)).date() + timedelta(days=1)
        slots, hist_aht = run(_history_slots(ctx, target, weeks, imin, uplift_file, queue, open_, close))
        if not any(c for _t, c in slots):
            raise click.ClickException(f"no offered calls on the {weeks} previous {target:%A}s before {target}")
        aht_s = aht_s or hist_aht
        label = f"history: {target} ({target:%A}) from the {weeks} previous weeks"
    else:
        slots = [(s.start, s.calls) for s in seed_day(daily_calls, imin)]
        label = f"seed 800-line profile, {daily_calls:g} calls/day"
    aht = aht_s or SEED_AHT_S
    try:
        params = StaffingParams(aht, imin, answer_target, patience_s, sl_target, sl_seconds, shrinkage, max_occupancy, model, erlang_a_sl)
        plan = plan_day(slots, params, shift_lengths, start_step_min, max_seats=seats)
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    out = sys.stdout if csv_path == "-" else None
    if csv_path:
        _write_plan_csv(plan, out or open(csv_path, "w", newline="", encoding="utf-8"), close_after=out is None)
        if out:
            return
    click.echo(f"Plan for {label}; AHT {aht:g} s, {imin}-min intervals, shrinkage {_pct(shrinkage)}.")
    click.echo(
        f"Models: erlang_c = agents for {_pct(sl_target)} answered within {sl_seconds:g} s (no abandonment); "
        f"erlang_a = agents for a {_pct(answer_target)} answer rate with {patience_s:g} s mean patience. Shifts cover: {model}."
    )
    click.echo(f"{'start':>5} {'calls':>7} {'Erl':>6} {'erlang_c':>8} {'erlang_a':>8} {'planned':>7} {'answered(A)':>11} {'SL(A)':>6}")
    for r, d in zip(plan.intervals, plan.delivered):
        click.echo(
            f"{r.start:%H:%M} {r.calls:7.1f} {r.traffic:6.1f} {r.erlang_c.scheduled:8d} {r.erlang_a.scheduled:8d} "
            f"{d.planned:7d} {_pct(d.answer_rate):>11} {_pct(d.service_level):>6}"
        )
    click.echo("Shifts:")
    for s in plan.shifts.shifts:
        click.echo(f"  {s.count:3d} x {s.length_h:g} h  {s.start:%H:%M}-{s.end:%H:%M}")
    sp = plan.shifts
    click.echo(
        f"Peak seats planned: {sp.peak_coverage} (erlang_a asks {plan.peak_erlang_a}, erlang_c asks {plan.peak_erlang_c}); "
        f"{sp.people} people"
    )
    saved = 1 - sp.paid_hours / sp.flat_paid_hours if sp.flat_paid_hours else 0.0
    click.echo(
        f"Paid hours: {sp.paid_hours:g} planned vs {sp.flat_paid_hours:g} flat ({sp.peak_requirement} all day), "
        f"{_pct(saved)} fewer{'' if sp.optimal else ' (solver stopped early: not proven optimal)'}"
    )
    click.echo(f"[erlang_a] day answer rate with this plan: {_pct(plan.day_answer_rate)}; service level {_pct(plan.day_service_level)} within {sl_seconds:g} s")
    if svg_path:
        from cti.stats.charts import staffing_svg

        svg = staffing_svg(
            [f"{r.start:%H:%M}" for r in plan.intervals],
            list(sp.coverage),
            [
                (f"Erlang A: {_pct(answer_target)} answered, {patience_s:g} s patience", [r.erlang_a.scheduled for r in plan.intervals]),
                (f"Erlang C: {_pct(sl_target)} in {sl_seconds:g} s", [r.erlang_c.scheduled for r in plan.intervals]),
            ],
            title=f"Agents required vs planned coverage ({label})",
        )
        Path(svg_path).write_text(svg, encoding="utf-8")
        click.echo(f"Chart: {svg_path}")


def _write_plan_csv(plan: Any, f: Any, close_after: bool) -> None:
    import csv

    try:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["start", "calls", "traffic_erlangs", "erlang_c_agents", "erlang_c_rostered", "erlang_c_service_level",
                    "erlang_a_agents", "erlang_a_rostered", "erlang_a_answer_rate", "planned", "planned_answer_rate_erlang_a",
                    "planned_service_level_erlang_a"])
        for r, d in zip(plan.intervals, plan.delivered):
            w.writerow([f"{r.start:%H:%M}", f"{r.calls:.3f}", f"{r.traffic:.3f}", r.erlang_c.agents, r.erlang_c.scheduled,
                        f"{r.erlang_c.service_level:.4f}", r.erlang_a.agents, r.erlang_a.scheduled, f"{r.erlang_a.answer_rate:.4f}",
                        d.planned, f"{d.answer_rate:.4f}", f"{d.service_level:.4f}"])
    finally:
        if close_after:
            f.close()


# ---------------------------------------------------------------- reports


def _report_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First local day."),
        click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last local day (default: --from)."),
        click.option("--queue", default=None, help="Only this queue."),
        click.option("--sl-seconds", type=click.FloatRange(min=0), default=20, show_default=True),
        click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True, help="CSV output."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


async def _load(ctx: click.Context, date_from: datetime, date_to: datetime | None, queue: str | None) -> tuple[list[Any], ZoneInfo]:
    from cti.stats.reports import load_calls

    engine, tz = _engine_and_tz(ctx)
    last = (date_to or date_from).date()
    start = datetime.combine(date_from.date(), time(0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    try:
        return await load_calls(engine, start, end, queue), tz
    finally:
        await engine.dispose()


def _emit(lines: Sequence[Any], csv_path: str, tz: ZoneInfo) -> None:
    """CSV with times in the call center's zone (``routing.timezone``), to the second."""
    from cti.stats.reports import write_csv

    if csv_path == "-":
        write_csv(lines, sys.stdout, tz)
    else:
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            write_csv(lines, f, tz)
        click.echo(f"{len(lines)} lines written to {csv_path}", err=True)


@click.group()
def reports() -> None:
    """Reports from the calls table: offered, answered, abandoned, answer rate, service level, AHT, occupancy."""


@reports.command("intervals")
@_report_options
@click.option("--interval-min", type=click.Choice(["15", "30", "60"]), default="30", show_default=True)
@click.option("--by-queue", is_flag=True, help="One line per queue and interval.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False), default=None, help="Also draw offered/answered per interval.")
@click.pass_context
def intervals_cmd(ctx: click.Context, date_from: datetime, date_to: datetime | None, queue: str | None, sl_seconds: float,
                  csv_path: str, interval_min: str, by_queue: bool, svg_path: str | None) -> None:
    """Per interval (15/30/60 min)."""
    from cti.cli import run
    from cti.stats.reports import interval_report

    rows, tz = run(_load(ctx, date_from, date_to, queue))
    lines = interval_report(rows, tz, int(interval_min), sl_seconds, by_queue)
    _emit(lines, csv_path, tz)
    if svg_path:
        from cti.stats.charts import traffic_svg

        multi_day = date_to is not None and date_to.date() != date_from.date()
        Path(svg_path).write_text(
            traffic_svg([s for s in lines if s.queue == "*"] if not by_queue else lines, label_fmt="%m-%d %H:%M" if multi_day else "%H:%M"),
            encoding="utf-8",
        )


@reports.command("daily")
@_report_options
@click.option("--by-queue", is_flag=True)
@click.pass_context
def daily_cmd(ctx: click.Context, date_from: datetime, date_to: datetime | None, queue: str | None, sl_seconds: float, csv_path: str, by_queue: bool) -> None:
    """Per day."""
    from cti.cli import run
    from cti.stats.reports import daily_report

    rows, tz = run(_load(ctx, date_from, date_to, queue))
    _emit(daily_report(rows, tz, sl_seconds, by_queue), csv_path, tz)


@reports.command("queues")
@_report_options
@click.pass_context
def queues_cmd(ctx: click.Context, date_from: datetime, date_to: datetime | None, queue: str | None, sl_seconds: float, csv_path: str) -> None:
    """Per queue over the period."""
    from cti.cli import run
    from cti.stats.reports import queue_report

    rows, tz = run(_load(ctx, date_from, date_to, queue))
    _emit(queue_report(rows, sl_seconds), csv_path, tz)


@reports.command("agents")
@_report_options
@click.pass_context
def agents_cmd(ctx: click.Context, date_from: datetime, date_to: datetime | None, queue: str | None, sl_seconds: float, csv_path: str) -> None:
    """Per agent over the period (answered calls, AHT, talk time, occupancy)."""
    from cti.cli import run
    from cti.stats.reports import agent_report

    rows, tz = run(_load(ctx, date_from, date_to, queue))
    _emit(agent_report(rows, tz, 30, sl_seconds), csv_path, tz)


@reports.command("peaks")
@_report_options
@click.option("--interval-min", type=click.Choice(["15", "30", "60"]), default="30", show_default=True)
@click.option("--ratio", type=click.FloatRange(min=1), default=1.25, show_default=True, help="Peak: offered >= ratio x mean interval.")
@click.pass_context
def peaks_cmd(ctx: click.Context, date_from: datetime, date_to: datetime | None, queue: str | None, sl_seconds: float, csv_path: str,
              interval_min: str, ratio: float) -> None:
    """Runs of busy intervals (CSV: start, end, offered, busiest interval)."""
    import csv

    from cti.cli import run
    from cti.stats.reports import find_peaks, interval_report
    from cti.stats.timefmt import local_iso

    rows, tz = run(_load(ctx, date_from, date_to, queue))
    peaks = find_peaks(interval_report(rows, tz, int(interval_min), sl_seconds), ratio)
    f = sys.stdout if csv_path == "-" else open(csv_path, "w", newline="", encoding="utf-8")
    try:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["start", "end", "offered", "busiest", "busiest_offered"])
        for p in peaks:
            w.writerow([local_iso(p.start, tz), local_iso(p.end, tz), p.offered, local_iso(p.busiest, tz), p.busiest_offered])
    finally:
        if f is not sys.stdout:
            f.close()
