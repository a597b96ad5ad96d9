"""SVG charts are well-formed XML, scale to the data and escape what comes from data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from cti.stats.charts import staffing_svg, traffic_svg
from cti.stats.reports import CallRow, interval_report

NS = "{http://www.w3.org/2000/svg}"


def test_staffing_chart() -> None:
    svg = staffing_svg(["08:00", "08:30", "09:00"], [16, 29, 33], [("Erlang A <80%> & co", [16, 23, 33]), ("Erlang C", [23, 23, 46])])
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert len(root.findall(f"{NS}polygon")) == 1 and len(root.findall(f"{NS}polyline")) == 2
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert "Erlang A <80%> & co" in titles  # escaped in the source, intact once parsed
    assert "&lt;80%&gt; &amp;" in svg
    # The y axis reaches the largest value (46 -> 50).
    assert "50" in [t.text for t in root.iter(f"{NS}text")]


def test_traffic_chart_from_a_report() -> None:
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    rows = [
        CallRow(started_at=t0 + timedelta(minutes=m), queued_at=t0 + timedelta(minutes=m), answered_at=t0 + timedelta(minutes=m, seconds=10),
                talk_s=60, outcome="answered" if m % 3 else "abandoned", agent_id=1)
        for m in range(0, 120, 4)
    ]
    lines = interval_report(rows, timezone.utc, 30)
    root = ET.fromstring(traffic_svg(lines, title="Monday <test>"))
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert len(bars) == 2 * len(lines)
    heights = {r.find(f"{NS}title").text: float(r.get("height")) for r in bars}
    assert heights["09:00 offered: 8"] > heights["09:00 answered: 5"] > 0
    assert root.find(f"{NS}title").text == "Monday <test>"
    assert ET.fromstring(traffic_svg([])).tag == f"{NS}svg"
