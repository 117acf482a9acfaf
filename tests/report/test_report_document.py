"""The shared report document: HTML markup and PDF layout of its blocks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image

from hepablate.report.document import (
    Figure,
    FigureGrid,
    PageBreak,
    Paragraph,
    ReportDocument,
    Section,
    Table,
    render_html,
    render_pdf,
)


def _png(w: int = 120, h: int = 80) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 40, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _plain() -> ReportDocument:
    return ReportDocument(
        "Plan",
        "sub",
        [
            Section("Case", [Paragraph("ok", "info"), Table(["a", "b"], [["1", "2"]], "cap")]),
            Section("Images", [Figure(_png(), "fig", 0.5)], new_page=True),
        ],
        footer="foot",
    )


def _pages(path: Path) -> list[tuple[float, float, np.ndarray]]:
    pdf = pdfium.PdfDocument(str(path))
    out = []
    for page in pdf:
        img = np.asarray(page.render(scale=0.4).to_pil().convert("L"))
        out.append((*page.get_size(), img))
    return out


def test_plain_blocks_keep_their_markup(tmp_path: Path) -> None:
    html = render_html(_plain())
    assert "<body>" in html and 'class="wide"' not in html
    assert "<table>" in html and "<td>1</td><td>2</td>" in html and "<h3>" not in html
    assert '<figure><img alt="fig" src="data:image/png;base64,' in html
    pages = _pages(render_pdf(_plain(), tmp_path / "p.pdf"))
    assert len(pages) == 2 and pages[0][0] < pages[0][1]  # A4 portrait


def test_extended_blocks(tmp_path: Path) -> None:
    tall = Figure(_png(100, 400), "tall")  # would not fit a page at full width
    doc = ReportDocument(
        "Audit",
        sections=[
            Section("", [Paragraph("intro", "note")]),
            Section(
                "Tables",
                [
                    Table(
                        ["group", "n"],
                        [["x", "3"], ["y", "12"]],
                        title="Counts",
                        align=["left", "right"],
                        striped=True,
                        keep_together=True,
                    ),
                    FigureGrid(
                        [
                            Figure(_png(120, 40), "one"),
                            Figure(_png(120, 40), "two"),
                            Figure(_png(120, 40)),
                        ]
                    ),
                    PageBreak(),
                    tall,
                ],
            ),
        ],
        landscape=True,
    )
    html = render_html(doc)
    assert '<body class="wide">' in html and html.count("<h2>") == 1
    assert "<h3>Counts</h3>" in html and '<table class="striped">' in html
    assert '<th class="r"><' not in html and '<td class="r">12</td>' in html
    assert html.count('<figure style="width:50%">') == 3 and 'alt="two"' in html
    pages = _pages(render_pdf(doc, tmp_path / "a.pdf"))
    assert len(pages) == 2  # the page break; the tall figure shrunk to fit the second page
    assert all(w > h for w, h, _ in pages)  # A4 landscape
    for _, _, img in pages:
        assert (img < 200).mean() > 0.002
