"""Benchmark: the audit report (read, engines, figures, HTML, PDF) on a synthetic registry.

Usage: python benchmarks/bench_audit_report.py [--patients 10000] [--db sqlite:///PATH]
Without --db, a synthetic registry (hepablate.registry.synthetic, seed 42) is generated into
a temporary SQLite file first (not timed). Prints JSON to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10000)
    ap.add_argument("--db", default=None, help="existing registry URL (skips generation)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    from hepablate.outcomes.audit import AuditSettings, build_audit, read_registry
    from hepablate.outcomes.audit_render import build_document, make_figures, write_audit_report
    from hepablate.report.document import render_html, render_pdf

    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    url = args.db
    gen_s = None
    if url is None:
        from hepablate.registry.db import migrate
        from hepablate.registry.synthetic import generate

        url = "sqlite:///" + str(tmp / "registry.db")
        t = time.perf_counter()
        migrate(url)
        generate(args.patients, 42, url)
        gen_s = time.perf_counter() - t
    settings = AuditSettings(as_of=date(2025, 12, 31))
    totals = []
    cpu = []
    for i in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        write_audit_report(url, tmp / f"out{i}", settings)
        totals.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    # stage breakdown (one more run)
    stages = {}
    t = time.perf_counter()
    data = read_registry(url)
    stages["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    report, kms = build_audit(data, settings)
    stages["engines_s"] = time.perf_counter() - t
    t = time.perf_counter()
    figs = make_figures(report, kms)
    stages["figures_s"] = time.perf_counter() - t
    t = time.perf_counter()
    doc = build_document(report, figs)
    render_html(doc)
    stages["html_s"] = time.perf_counter() - t
    t = time.perf_counter()
    render_pdf(doc, tmp / "stage.pdf")
    stages["pdf_s"] = time.perf_counter() - t
    print(
        json.dumps(
            {
                "benchmark": "audit_report",
                "patients": report["counts"]["patients"],
                "tumours": report["counts"]["tumours"],
                "sessions": report["counts"]["procedure_sessions"],
                "followups": report["counts"]["followups"],
                "followup_lesions": report["counts"]["followup_lesions"],
                "adverse_events": report["counts"]["adverse_events"],
                "generate_s": None if gen_s is None else round(gen_s, 1),
                "report_total_s": [round(x, 2) for x in totals],
                "report_best_s": round(min(totals), 2),
                "report_cpu_s": [round(x, 2) for x in cpu],
                "load_average_1min": round(os.getloadavg()[0], 2),
                "stages": {k: round(v, 2) for k, v in stages.items()},
                "machine": {
                    "cpu": _cpu(),
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
