"""A generic report: a list of sections holding paragraphs, tables and figures, rendered to
one self-contained HTML file (jinja2; figures inlined as base64 PNG, no external references)
and to an A4 PDF (reportlab). Used by the IRE and laser plan reports and the registry audit
report, each of which builds its own `ReportDocument` and calls `write_report`.

Page layout (`PageBreak`, `Section.new_page`, `Table.keep_together`, `ReportDocument.landscape`)
applies to the PDF; the HTML is one continuous page.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2

Align = Literal["left", "right", "center"]


@dataclass
class Paragraph:
    text: str
    style: str = "normal"
    """'normal', 'note' (small print) or 'warning' / 'error' / 'info' (coloured box)."""


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    """Note printed below the table."""
    col_widths: list[float] | None = None
    """Relative column widths for the PDF (sum normalised); None: equal."""
    title: str = ""
    """Small heading above the table, kept with its first rows."""
    align: list[Align] | None = None
    """Per-column alignment; None: all left."""
    striped: bool = False
    """Alternate row shading."""
    keep_together: bool = False
    """PDF: start the table (with its title) on the next page rather than split it, unless it
    is longer than a page."""


@dataclass
class Figure:
    png: bytes
    caption: str = ""
    width_frac: float = 1.0
    """Fraction of the text width in the PDF (height capped to fit a page)."""


@dataclass
class FigureGrid:
    """Figures side by side, `columns` to a row (each row kept whole in the PDF)."""

    figures: list[Figure]
    columns: int = 2


@dataclass
class PageBreak:
    """PDF: continue on a new page."""


Block = Paragraph | Table | Figure | FigureGrid | PageBreak


@dataclass
class Section:
    heading: str
    """Empty: no heading (e.g. an introduction under the title)."""
    blocks: list[Block] = field(default_factory=list)
    new_page: bool = False


@dataclass
class ReportDocument:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    footer: str = ""
    landscape: bool = False
    """A4 landscape PDF and a wider HTML page, for wide tables."""


_HTML = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ doc.title | e }}</title>
<style>
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:60em;color:#222;
line-height:1.4}
h1{font-size:1.6em;margin-bottom:0}h2{font-size:1.2em;border-bottom:1px solid #888;
margin-top:1.6em}.sub{color:#555;margin-top:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eee}caption{caption-side:bottom;font-size:.85em;color:#555;text-align:left}
figure{margin:.8em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
.note{font-size:.85em;color:#555}.warning,.error,.info{padding:.4em .6em;margin:.4em 0;
border-left:4px solid}.warning{background:#fff6e0;border-color:#e0a000}
.error{background:#fde8e8;border-color:#c00}.info{background:#eef4fb;border-color:#36c}
footer{margin-top:2em;font-size:.8em;color:#666}
body.wide{max-width:80em}h3{font-size:1em;margin:1.2em 0 .2em}
th.r,td.r{text-align:right}th.c,td.c{text-align:center}
.striped tr:nth-child(odd) td{background:#f6f6f6}
.grid{display:flex;flex-wrap:wrap}.grid figure{box-sizing:border-box;padding-right:1em}
</style></head><body{% if doc.landscape %} class="wide"{% endif %}>
{%- macro fig(b, attr='') %}<figure{{ attr }}><img alt="{{ b.caption | e }}" \
src="data:image/png;base64,{{ b.b64 }}">
{% if b.caption %}<figcaption>{{ b.caption | e }}</figcaption>{% endif %}</figure>
{% endmacro %}
<h1>{{ doc.title | e }}</h1>{% if doc.subtitle %}<p class="sub">{{ doc.subtitle | e }}</p>{% endif %}
{% for s in doc.sections %}{% if s.heading %}<h2>{{ s.heading | e }}</h2>
{% endif %}{% for b in s.blocks %}{% if b.kind == 'p' %}<p class="{{ b.style }}">{{ b.text | e }}</p>
{% elif b.kind == 't' %}{% if b.title %}<h3>{{ b.title | e }}</h3>
{% endif %}<table{% if b.striped %} class="striped"{% endif %}>\
{% if b.caption %}<caption>{{ b.caption | e }}</caption>{% endif %}
<tr>{% for h in b.header %}<th{{ b.cls[loop.index0] }}>{{ h | e }}</th>{% endfor %}</tr>
{% for r in b.rows %}<tr>{% for c in r %}<td{{ b.cls[loop.index0] }}>{{ c | e }}</td>\
{% endfor %}</tr>{% endfor %}
</table>
{% elif b.kind == 'f' %}{{ fig(b) }}{% elif b.kind == 'g' %}<div class="grid">\
{% for f in b.figures %}{{ fig(f, b.attr) }}{% endfor %}</div>
{% endif %}{% endfor %}{% endfor %}
{% if doc.footer %}<footer>{{ doc.footer | e }}</footer>{% endif %}
</body></html>
"""
)


def _fig_html(f: Figure) -> dict[str, Any]:
    return {"kind": "f", "caption": f.caption, "b64": base64.b64encode(f.png).decode("ascii")}


def _table_html(t: Table) -> dict[str, Any]:
    ncol = max([len(t.header), *(len(r) for r in t.rows)])
    align = list(t.align or []) + ["left"] * ncol
    cls = ["" if a == "left" else f' class="{a[0]}"' for a in align[:ncol]]
    return {
        "kind": "t",
        "header": t.header,
        "rows": t.rows,
        "caption": t.caption,
        "title": t.title,
        "striped": t.striped,
        "cls": cls,
    }


def render_html(doc: ReportDocument) -> str:
    """Self-contained HTML (no external references)."""
    sections = []
    for s in doc.sections:
        blocks: list[dict[str, Any]] = []
        for b in s.blocks:
            if isinstance(b, Paragraph):
                blocks.append({"kind": "p", "text": b.text, "style": b.style})
            elif isinstance(b, Table):
                blocks.append(_table_html(b))
            elif isinstance(b, Figure):
                blocks.append(_fig_html(b))
            elif isinstance(b, FigureGrid):
                attr = f' style="width:{100 / max(b.columns, 1):.4g}%"'
                figs = [_fig_html(f) for f in b.figures]
                blocks.append({"kind": "g", "figures": figs, "attr": attr})
        sections.append({"heading": s.heading, "blocks": blocks})
    return _HTML.render(
        doc={
            "title": doc.title,
            "subtitle": doc.subtitle,
            "sections": sections,
            "footer": doc.footer,
            "landscape": doc.landscape,
        }
    )


class _Pdf:
    """Styles and flowables of one PDF (reportlab imported lazily)."""

    def __init__(self, doc: ReportDocument) -> None:
        from reportlab.lib import colors
        from reportlab.lib.pagesizes import A4, landscape
        from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
        from reportlab.lib.units import mm

        self.colors = colors
        self.page = landscape(A4) if doc.landscape else A4
        self.margins = (15 * mm, 15 * mm, 14 * mm, 14 * mm)  # left, right, top, bottom
        self.width = self.page[0] - 30 * mm
        # the frame's height less its 6 pt paddings: the tallest flowable that fits a page
        self.height = self.page[1] - 28 * mm - 12
        self.mm = mm
        ss = getSampleStyleSheet()
        self.ss = ss
        self.body = ParagraphStyle("body", parent=ss["BodyText"], fontSize=9, leading=11.5)
        self.note = ParagraphStyle(
            "note",
            parent=self.body,
            fontSize=7.5,
            leading=9.5,
            textColor=colors.HexColor("#555555"),
        )
        cell = ParagraphStyle("cell", parent=self.body, fontSize=7.5, leading=9)
        self.cell = {
            "left": cell,
            "right": ParagraphStyle("cell_r", parent=cell, alignment=2),
            "center": ParagraphStyle("cell_c", parent=cell, alignment=1),
        }
        self.table_title = ParagraphStyle("table_title", parent=ss["Heading4"], spaceBefore=0)
        self.boxes = {
            "warning": colors.HexColor("#fff6e0"),
            "error": colors.HexColor("#fde8e8"),
            "info": colors.HexColor("#eef4fb"),
        }

    def paragraph(self, b: Paragraph) -> Any:
        from xml.sax.saxutils import escape

        from reportlab.platypus import Paragraph as RlParagraph
        from reportlab.platypus import Table as RlTable
        from reportlab.platypus import TableStyle

        if b.style not in self.boxes:
            return RlParagraph(escape(b.text), self.note if b.style == "note" else self.body)
        flow = RlTable([[RlParagraph(escape(b.text), self.body)]], colWidths=[self.width])
        flow.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, -1), self.boxes[b.style]),
                    ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        return flow

    def table(self, b: Table) -> list[Any]:
        from xml.sax.saxutils import escape

        from reportlab.platypus import KeepTogether, TableStyle
        from reportlab.platypus import Paragraph as RlParagraph
        from reportlab.platypus import Table as RlTable

        ncol = max(len(b.header), 1)
        align = list(b.align or []) + ["left"] * ncol
        styles = [self.cell[a] for a in align]
        data: list[list[Any]] = []
        o = 1 if b.title else 0  # the title is the first row, so it stays with the header
        if b.title:
            data.append([RlParagraph(escape(b.title), self.table_title)] + [""] * (ncol - 1))
        data.append([RlParagraph(f"<b>{escape(h)}</b>", styles[i]) for i, h in enumerate(b.header)])
        data += [[RlParagraph(escape(c), styles[i]) for i, c in enumerate(r)] for r in b.rows]
        rel = b.col_widths or [1.0] * ncol
        tot = float(sum(rel))
        t = RlTable(data, colWidths=[self.width * r / tot for r in rel], repeatRows=1 + o)
        grey = self.colors.HexColor
        cmds: list[tuple[Any, ...]] = [
            ("GRID", (0, o), (-1, -1), 0.4, grey("#999999")),
            ("BACKGROUND", (0, o), (-1, o), grey("#e8e8e8")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        if b.title:
            cmds += [("SPAN", (0, 0), (-1, 0)), ("LEFTPADDING", (0, 0), (0, 0), 1)]
            cmds += [("TOPPADDING", (0, 0), (-1, 0), 8), ("BOTTOMPADDING", (0, 0), (-1, 0), 4)]
        if b.striped:
            cmds.append(
                ("ROWBACKGROUNDS", (0, 1 + o), (-1, -1), [grey("#ffffff"), grey("#f6f6f6")])
            )
        t.setStyle(TableStyle(cmds))
        flow: list[Any] = [t]
        if b.caption:
            flow.append(RlParagraph(escape(b.caption), self.note))
        return [KeepTogether(flow)] if b.keep_together else flow

    def image(self, f: Figure, width: float) -> list[Any]:
        """The image at `width` (less where it would not fit a page), then its caption."""
        from xml.sax.saxutils import escape

        from PIL import Image as PilImage
        from reportlab.platypus import Image
        from reportlab.platypus import Paragraph as RlParagraph

        im = PilImage.open(io.BytesIO(f.png))
        h = width * im.height / im.width
        max_h = self.height - (30 if f.caption else 6)
        if h > max_h:
            width, h = width * max_h / h, max_h
        parts: list[Any] = [Image(io.BytesIO(f.png), width=width, height=h)]
        if f.caption:
            parts.append(RlParagraph(escape(f.caption), self.note))
        return parts

    def grid(self, g: FigureGrid) -> list[Any]:
        from reportlab.platypus import Table as RlTable
        from reportlab.platypus import TableStyle

        n = max(g.columns, 1)
        col = self.width / n
        rows = []
        for i in range(0, len(g.figures), n):
            cells = [self.image(f, col - 4 * self.mm) for f in g.figures[i : i + n]]
            t = RlTable([cells + [""] * (n - len(cells))], colWidths=[col] * n)
            t.setStyle(
                TableStyle(
                    [
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("LEFTPADDING", (0, 0), (-1, -1), 2 * self.mm),
                        ("RIGHTPADDING", (0, 0), (-1, -1), 2 * self.mm),
                    ]
                )
            )
            rows.append(t)
        return rows

    def block(self, b: Paragraph | Table | Figure | FigureGrid) -> list[Any]:
        from reportlab.platypus import KeepTogether

        if isinstance(b, Paragraph):
            return [self.paragraph(b)]
        if isinstance(b, Table):
            return self.table(b)
        if isinstance(b, Figure):
            return [KeepTogether(self.image(b, self.width * b.width_frac))]
        return self.grid(b)


def _page_break(story: list[Any]) -> None:
    """A page break, without the spacer before it (a spacer that spilled onto a new page
    would leave that page blank)."""
    from reportlab.platypus import PageBreak as RlPageBreak
    from reportlab.platypus import Spacer

    while story and isinstance(story[-1], Spacer):
        story.pop()
    story.append(RlPageBreak())


def render_pdf(doc: ReportDocument, path: str | Path) -> Path:
    """A4 PDF with the same content (reportlab platypus)."""
    from xml.sax.saxutils import escape

    from reportlab import rl_config
    from reportlab.platypus import KeepTogether, SimpleDocTemplate, Spacer
    from reportlab.platypus import Paragraph as RlParagraph

    path = Path(path)
    pdf = _Pdf(doc)
    story: list[Any] = [RlParagraph(escape(doc.title), pdf.ss["Title"])]
    if doc.subtitle:
        story.append(RlParagraph(escape(doc.subtitle), pdf.body))
    for s in doc.sections:
        if s.new_page:
            _page_break(story)
        head = RlParagraph(escape(s.heading), pdf.ss["Heading2"]) if s.heading else None
        for b in s.blocks:
            if isinstance(b, PageBreak):
                _page_break(story)  # before a pending heading: it starts the new page
                continue
            items = pdf.block(b)
            if head is not None:
                # Keep the heading with the start of its first block (unnested: a KeepTogether
                # inside another reads as taller than any page and forces a page break).
                first = items[0]
                part = first._content if isinstance(first, KeepTogether) else [first]
                story.append(KeepTogether([head, Spacer(1, 2), *part]))
                story.extend(items[1:])
                head = None
            else:
                story.extend(items)
            story.append(Spacer(1, 4))
        if head is not None:
            story.append(head)

    def _footer(canvas: Any, d: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(pdf.colors.HexColor("#666666"))
        canvas.drawString(15 * pdf.mm, 8 * pdf.mm, doc.footer[:160])
        canvas.drawRightString(pdf.page[0] - 15 * pdf.mm, 8 * pdf.mm, f"page {d.page}")
        canvas.restoreState()

    left, right, top, bottom = pdf.margins
    a85 = rl_config.useA85
    rl_config.useA85 = 0  # binary image streams: ASCII85-encoding the PNGs costs time
    try:
        SimpleDocTemplate(
            str(path),
            pagesize=pdf.page,
            leftMargin=left,
            rightMargin=right,
            topMargin=top,
            bottomMargin=bottom,
            title=doc.title,
        ).build(story, onFirstPage=_footer, onLaterPages=_footer)
    finally:
        rl_config.useA85 = a85
    return path


def write_report(
    doc: ReportDocument, out_dir: str | Path, stem: str = "report"
) -> tuple[Path, Path]:
    """`<stem>.html` and `<stem>.pdf` in `out_dir`."""
    out = Path(out_dir)
    html_path = out / f"{stem}.html"
    html_path.write_text(render_html(doc), encoding="utf-8")
    pdf_path = render_pdf(doc, out / f"{stem}.pdf")
    return html_path, pdf_path
