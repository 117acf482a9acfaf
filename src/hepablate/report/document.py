"""A generic plan report: a list of sections holding paragraphs, tables and figures, rendered
to one self-contained HTML file (jinja2; figures inlined as base64 PNG, no external
references) and to a PDF (reportlab). Modality-neutral: the IRE and laser planners build
their own `ReportDocument` and call `write_report`.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import jinja2


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
    col_widths: list[float] | None = None
    """Relative column widths for the PDF (sum normalised); None: equal."""


@dataclass
class Figure:
    png: bytes
    caption: str = ""
    width_frac: float = 1.0
    """Fraction of the text width in the PDF."""


Block = Paragraph | Table | Figure


@dataclass
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)
    new_page: bool = False


@dataclass
class ReportDocument:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    footer: str = ""


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
</style></head><body>
<h1>{{ doc.title | e }}</h1>{% if doc.subtitle %}<p class="sub">{{ doc.subtitle | e }}</p>{% endif %}
{% for s in doc.sections %}<h2>{{ s.heading | e }}</h2>
{% for b in s.blocks %}{% if b.kind == 'p' %}<p class="{{ b.style }}">{{ b.text | e }}</p>
{% elif b.kind == 't' %}<table>{% if b.caption %}<caption>{{ b.caption | e }}</caption>{% endif %}
<tr>{% for h in b.header %}<th>{{ h | e }}</th>{% endfor %}</tr>
{% for r in b.rows %}<tr>{% for c in r %}<td>{{ c | e }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% else %}<figure><img alt="{{ b.caption | e }}" src="data:image/png;base64,{{ b.b64 }}">
{% if b.caption %}<figcaption>{{ b.caption | e }}</figcaption>{% endif %}</figure>
{% endif %}{% endfor %}{% endfor %}
{% if doc.footer %}<footer>{{ doc.footer | e }}</footer>{% endif %}
</body></html>
"""
)


def render_html(doc: ReportDocument) -> str:
    """Self-contained HTML (no external references)."""
    sections = []
    for s in doc.sections:
        blocks = []
        for b in s.blocks:
            if isinstance(b, Paragraph):
                blocks.append({"kind": "p", "text": b.text, "style": b.style})
            elif isinstance(b, Table):
                blocks.append(
                    {"kind": "t", "header": b.header, "rows": b.rows, "caption": b.caption}
                )
            else:
                blocks.append(
                    {
                        "kind": "f",
                        "caption": b.caption,
                        "b64": base64.b64encode(b.png).decode("ascii"),
                    }
                )
        sections.append({"heading": s.heading, "blocks": blocks})
    return _HTML.render(
        doc={
            "title": doc.title,
            "subtitle": doc.subtitle,
            "sections": sections,
            "footer": doc.footer,
        }
    )


def render_pdf(doc: ReportDocument, path: str | Path) -> Path:
    """A4 PDF with the same content (reportlab platypus)."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        PageBreak,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )
    from reportlab.platypus import Paragraph as RlParagraph
    from reportlab.platypus import Table as RlTable

    path = Path(path)
    ss = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=ss["BodyText"], fontSize=9, leading=11.5)
    note = ParagraphStyle(
        "note", parent=body, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#555555")
    )
    cell = ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9)
    boxes = {
        "warning": colors.HexColor("#fff6e0"),
        "error": colors.HexColor("#fde8e8"),
        "info": colors.HexColor("#eef4fb"),
    }
    width = A4[0] - 30 * mm
    story: list = [RlParagraph(escape(doc.title), ss["Title"])]
    if doc.subtitle:
        story.append(RlParagraph(escape(doc.subtitle), body))
    for s in doc.sections:
        if s.new_page:
            story.append(PageBreak())
        head = RlParagraph(escape(s.heading), ss["Heading2"])
        first = True
        for b in s.blocks:
            if isinstance(b, Paragraph):
                if b.style in boxes:
                    flow = RlTable([[RlParagraph(escape(b.text), body)]], colWidths=[width])
                    flow.setStyle(
                        TableStyle(
                            [
                                ("BACKGROUND", (0, 0), (-1, -1), boxes[b.style]),
                                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                            ]
                        )
                    )
                else:
                    flow = RlParagraph(escape(b.text), note if b.style == "note" else body)
            elif isinstance(b, Table):
                data = [[RlParagraph(f"<b>{escape(h)}</b>", cell) for h in b.header]]
                data += [[RlParagraph(escape(c), cell) for c in r] for r in b.rows]
                ncol = max(len(b.header), 1)
                rel = b.col_widths or [1.0] * ncol
                tot = float(sum(rel))
                t = RlTable(data, colWidths=[width * r / tot for r in rel], repeatRows=1)
                t.setStyle(
                    TableStyle(
                        [
                            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                            ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ]
                    )
                )
                flow = [t]
                if b.caption:
                    flow.append(RlParagraph(escape(b.caption), note))
            else:
                from PIL import Image as PilImage

                im = PilImage.open(io.BytesIO(b.png))
                w = width * b.width_frac
                h = w * im.height / im.width
                img = Image(io.BytesIO(b.png), width=w, height=h)
                parts = [img]
                if b.caption:
                    parts.append(RlParagraph(escape(b.caption), note))
                flow = KeepTogether(parts)
            if first:
                # Keep the heading with the start of its first block.
                items = flow if isinstance(flow, list) else [flow]
                story.append(KeepTogether([head, Spacer(1, 2), items[0]]))
                story.extend(items[1:])
                first = False
            else:
                story.extend(flow if isinstance(flow, list) else [flow])
            story.append(Spacer(1, 4))
        if first:
            story.append(head)

    def _footer(canvas, d) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(15 * mm, 8 * mm, doc.footer[:160])
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {d.page}")
        canvas.restoreState()

    SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=doc.title,
    ).build(story, onFirstPage=_footer, onLaterPages=_footer)
    return path


def write_report(
    doc: ReportDocument, out_dir: str | Path, stem: str = "report"
) -> tuple[Path, Path]:
    out = Path(out_dir)
    html_path = out / f"{stem}.html"
    html_path.write_text(render_html(doc), encoding="utf-8")
    pdf_path = render_pdf(doc, out / f"{stem}.pdf")
    return html_path, pdf_path
