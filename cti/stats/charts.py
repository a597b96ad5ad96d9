"""Server-rendered SVG charts (hand-written SVG, no dependency): a person should look, not read.

- :func:`staffing_svg`: agents required per interval (a step line per model) against the planned coverage.
- :func:`traffic_svg`: offered and answered calls per interval as bars, with the service level as a line.

Every text that comes from data is XML-escaped; the output is a standalone ``<svg>`` document.
"""

from __future__ import annotations

import math
from datetime import tzinfo
from typing import Mapping, Sequence
from xml.sax.saxutils import escape

from cti.stats.reports import Stats

W, H = 960, 420
LEFT, RIGHT, TOP, BOTTOM = 60, 60, 50, 70
COLORS = {"coverage": "#4c78a8", "erlang_a": "#e45756", "erlang_c": "#f58518", "offered": "#bab0ac", "answered": "#54a24b", "sl": "#1f3b73"}


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def _frame(title: str, labels: Sequence[str], ymax: float, ylabel: str, right_axis: str | None = None) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="16" y="{TOP + ph / 2}" transform="rotate(-90 16 {TOP + ph / 2})" text-anchor="middle">{escape(ylabel)}</text>',
    ]
    for i in range(6):
        v = ymax * i / 5
        y = TOP + ph - ph * i / 5
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
        if right_axis:
            out.append(f'<text x="{LEFT + pw + 6}" y="{y + 4:.1f}">{20 * i}%</text>')
    if right_axis:
        out.append(f'<text x="{W - 14}" y="{TOP + ph / 2}" transform="rotate(90 {W - 14} {TOP + ph / 2})" text-anchor="middle">{escape(right_axis)}</text>')
    n = max(1, len(labels))
    step = max(1, math.ceil(n / 16))
    for i, lab in enumerate(labels):
        if i % step == 0:
            x = LEFT + pw * (i + 0.5) / n
            out.append(f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{escape(lab)}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" stroke="#333"/>')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="#333"/>')
    return out


def _legend(items: Sequence[tuple[str, str, str]]) -> list[str]:
    out = []
    x = LEFT
    y = H - 18
    for label, color, kind in items:
        if kind == "bar":
            out.append(f'<rect x="{x}" y="{y - 10}" width="14" height="10" fill="{color}"/>')
        else:
            dash = ' stroke-dasharray="6 4"' if kind == "dash" else ""
            out.append(f'<line x1="{x}" y1="{y - 5}" x2="{x + 14}" y2="{y - 5}" stroke="{color}" stroke-width="3"{dash}/>')
        out.append(f'<text x="{x + 20}" y="{y}">{escape(label)}</text>')
        x += 30 + sum(13 if ord(ch) > 0x2E80 else 7 for ch in label)  # CJK glyphs are wider
    return out


def _steps(values: Sequence[float], ymax: float) -> str:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(1, len(values))
    pts = []
    for i, v in enumerate(values):
        y = TOP + ph - ph * v / ymax
        pts.append(f"{LEFT + pw * i / n:.1f},{y:.1f}")
        pts.append(f"{LEFT + pw * (i + 1) / n:.1f},{y:.1f}")
    return " ".join(pts)


def staffing_svg(
    labels: Sequence[str],
    coverage: Sequence[int],
    required: Sequence[tuple[str, Sequence[int]]],
    title: str = "Agents required vs planned coverage",
) -> str:
    """Planned coverage (filled steps) against one or more requirement curves, e.g.
    ``[("Erlang A: 80% answered", [...]), ("Erlang C: 80% in 20 s", [...])]``."""
    ymax = _nice_max(max([*coverage, *(v for _n, vals in required for v in vals)], default=1))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = _frame(title, labels, ymax, "agents")
    if coverage:
        steps = _steps(coverage, ymax)
        out.append(f'<polygon points="{LEFT},{TOP + ph} {steps} {LEFT + pw},{TOP + ph}" fill="{COLORS["coverage"]}" fill-opacity="0.35" stroke="{COLORS["coverage"]}" stroke-width="2"><title>planned coverage</title></polygon>')
    legend = [("planned coverage", COLORS["coverage"], "bar")]
    palette = [COLORS["erlang_a"], COLORS["erlang_c"], "#72b7b2", "#b279a2"]
    for k, (name, vals) in enumerate(required):
        color = palette[k % len(palette)]
        dash = ' stroke-dasharray="6 4"' if k else ""
        out.append(f'<polyline points="{_steps(vals, ymax)}" fill="none" stroke="{color}" stroke-width="2.5"{dash}><title>{escape(name)}</title></polyline>')
        legend.append((name, color, "dash" if k else "line"))
    out += _legend(legend)
    out.append("</svg>")
    return "\n".join(out)


TRAFFIC_NAMES = {"offered": "offered", "answered": "answered", "service_level": "service level", "calls": "calls"}


def traffic_svg(lines: Sequence[Stats], title: str = "Offered and answered calls", label_fmt: str = "%H:%M",
                names: Mapping[str, str] | None = None, tz: tzinfo | None = None) -> str:
    """Offered (grey) and answered (green) bars per interval of an interval report, service level as a line.

    ``names`` translates the legend and axes (keys of :data:`TRAFFIC_NAMES`); ``tz`` the zone of the labels."""
    lines = list(lines)
    nm = {**TRAFFIC_NAMES, **(names or {})}
    labels = [(s.start.astimezone(tz) if tz else s.start).strftime(label_fmt) for s in lines]
    ymax = _nice_max(max((s.offered for s in lines), default=1))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = _frame(title, labels, ymax, nm["calls"], right_axis=f"{nm['service_level']} ({lines[0].sl_seconds:g} s)" if lines else None)
    n = max(1, len(lines))
    bw = pw / n
    pts = []
    for i, s in enumerate(lines):
        x = LEFT + bw * i
        for value, color, off, kind in ((s.offered, COLORS["offered"], 0.1, "offered"), (s.answered, COLORS["answered"], 0.5, "answered")):
            h = ph * value / ymax
            out.append(
                f'<rect x="{x + bw * off:.1f}" y="{TOP + ph - h:.1f}" width="{bw * 0.4:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(labels[i])} {escape(nm[kind])}: {value}</title></rect>"
            )
        if s.service_level is not None:
            pts.append(f"{x + bw / 2:.1f},{TOP + ph - ph * s.service_level:.1f}")
    if pts:
        out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{COLORS["sl"]}" stroke-width="2"/>')
    out += _legend([(nm["offered"], COLORS["offered"], "bar"), (nm["answered"], COLORS["answered"], "bar"), (nm["service_level"], COLORS["sl"], "line")])
    out.append("</svg>")
    return "\n".join(out)
