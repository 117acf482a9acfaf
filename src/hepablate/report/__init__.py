"""Plan reports: a generic document model rendered to self-contained HTML and PDF, reusable
figures (orthogonal and oblique slices with overlays, 3D view, value-volume histograms), and
the IRE report. The laser report lives in `hepablate.report.laser`."""

from hepablate.report.document import (
    Figure,
    Paragraph,
    ReportDocument,
    Section,
    Table,
    render_html,
    render_pdf,
    write_report,
)
from hepablate.report.figures import (
    Background,
    Needle,
    Overlay,
    histogram_plot,
    oblique_slice,
    orthogonal_slices,
    view_3d,
)

__all__ = [
    "Figure",
    "Paragraph",
    "ReportDocument",
    "Section",
    "Table",
    "render_html",
    "render_pdf",
    "write_report",
    "Background",
    "Needle",
    "Overlay",
    "histogram_plot",
    "oblique_slice",
    "orthogonal_slices",
    "view_3d",
]
