"""Disclosure-controlled reports: HTML (Jinja2 + inline SVG charts), PDF and XLSX."""

from __future__ import annotations

from utfall.reports.report import (
    Report,
    build_report,
    render_report_html,
    render_report_pdf,
    render_report_xlsx,
)

__all__ = [
    "Report",
    "build_report",
    "render_report_html",
    "render_report_pdf",
    "render_report_xlsx",
]
