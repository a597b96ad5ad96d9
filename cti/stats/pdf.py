"""An interval report as a PDF (ReportLab): title, period and zone, a bar chart of offered/answered/abandoned
per interval, the table of figures and the period's total. Chinese text uses ReportLab's built-in CID font
(``STSong-Light``, nothing embedded or downloaded)."""

from __future__ import annotations

import io
from typing import Mapping, Sequence

from cti.stats.reports import Stats

_CID = "STSong-Light"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} s"


def report_pdf(lines: Sequence[Stats], total: Stats, labels: Sequence[str], text: Mapping[str, str],
               subtitle: str) -> bytes:
    """The PDF bytes. ``labels`` are the intervals' local labels (``2026-12-07 09:30``); ``text`` holds the
    page's strings in the reader's language (keys ``title``, ``start``, ``offered``, ``answered``,
    ``abandoned``, ``answer_rate``, ``service_level``, ``aht``, ``total``, ``chart``, ``empty``)."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if _CID not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_CID))
    styles = getSampleStyleSheet()
    for name in ("Title", "Normal"):
        styles[name].fontName = _CID
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), title=text["title"], author="cti",
                            leftMargin=15 * mm, rightMargin=15 * mm, topMargin=12 * mm, bottomMargin=12 * mm)
    story: list = [Paragraph(text["title"], styles["Title"]), Paragraph(subtitle, styles["Normal"]), Spacer(1, 4 * mm)]
    colours = (colors.HexColor("#8a97a8"), colors.HexColor("#2fbf71"), colors.HexColor("#e5484d"))
    if lines:
        d = Drawing(260 * mm, 70 * mm)
        chart = VerticalBarChart()
        chart.x, chart.y, chart.width, chart.height = 12 * mm, 10 * mm, 230 * mm, 52 * mm
        chart.data = [[s.offered for s in lines], [s.answered for s in lines], [s.abandoned for s in lines]]
        chart.categoryAxis.categoryNames = [lab[-5:] for lab in labels]
        chart.categoryAxis.labels.fontSize = 6
        chart.categoryAxis.labels.angle = 45 if len(lines) > 16 else 0
        chart.valueAxis.valueMin = 0
        for i, c in enumerate(colours):
            chart.bars[i].fillColor = c
        d.add(chart)
        d.add(String(12 * mm, 65 * mm, text["chart"], fontName=_CID, fontSize=10))
        legend = Legend()
        legend.x, legend.y, legend.fontName, legend.fontSize = 200 * mm, 68 * mm, _CID, 8
        legend.alignment, legend.columnMaximum = "right", 1
        legend.colorNamePairs = list(zip(colours, (text["offered"], text["answered"], text["abandoned"])))
        d.add(legend)
        story += [d, Spacer(1, 4 * mm)]
    head = [text[k] for k in ("start", "offered", "answered", "abandoned", "answer_rate", "service_level", "aht")]
    rows = [head]
    for lab, s in zip(labels, lines):
        rows.append([lab, str(s.offered), str(s.answered), str(s.abandoned), _pct(s.answer_rate), _pct(s.service_level), _secs(s.aht_s)])
    rows.append([text["total"], str(total.offered), str(total.answered), str(total.abandoned), _pct(total.answer_rate),
                 _pct(total.service_level), _secs(total.aht_s)])
    if not lines:
        story.append(Paragraph(text["empty"], styles["Normal"]))
    table = Table(rows, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), _CID), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1b232e")), ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c0c6ce")),
        ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#e8edf3")),
    ]))
    story.append(table)
    doc.build(story)
    return buf.getvalue()
