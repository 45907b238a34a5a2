"""The PDF lays out wide tables so that no column or year is lost.

A demo-shaped region (ten years 2015–2024, units with long names) is rendered to PDF;
the PDF's text (pypdf) must hold every column header and every year of every table of
the HTML it was made from, as often as the tables have them, and no text may be placed
outside the page (a clipped column would still be in the content stream, off the page).
The page images were also converted with ``pdftoppm`` and looked at (docs/reports.md).
"""

from __future__ import annotations

import re
from collections import Counter
from html import unescape
from pathlib import Path

import pyarrow as pa
import pytest

from tests.reports.synthetic import synthetic_tables
from utfall.analytics.executor.backends import duckdb_tables

YEARS = list(range(2015, 2025))
NAMES = {"U1": "Beroendemottagningen för vuxna i norra länsdelen",
         "U2": "Beroendemottagningen för vuxna i södra länsdelen",
         "U3": "Mottagning Väst, allmänpsykiatri och beroende"}


def _ten_years(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The two-year synthetic region copied over 2015–2024 (new contact ids per copy)."""
    out = dict(tables)
    for name in ("contact", "procedure"):
        rows = tables[name].to_pylist()
        copies = []
        for k, year in enumerate(range(2015, 2025, 2)):
            for r in rows:
                c = dict(r)
                c["date"] = r["date"].replace(year=r["date"].year - 2021 + year)
                if c.get("contact_id"):
                    c["contact_id"] = f"{r['contact_id']}-{k}"
                copies.append(c)
        out[name] = pa.Table.from_pylist(copies, schema=tables[name].schema)
    units = tables["unit"].to_pylist()
    for u in units:
        u["name"] = NAMES[u["unit_id"]]
    out["unit"] = pa.Table.from_pylist(units, schema=tables["unit"].schema)
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    from utfall.reports import build_report, render_report_html, render_report_pdf

    tables = duckdb_tables(_ten_years(synthetic_tables(300, 5)))
    report = build_report(tables, indicators=["kva_au119", "kva_du119", "persons_substance_dx"],
                          source="demo")
    # without charts: an inline SVG is drawn in its own coordinate space, which the text
    # positions below cannot place on the page (charts scale to the page width in CSS)
    html = render_report_html(report, "sv", charts=False)
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    render_report_pdf(html, path)
    return html, path


def _html_tables(html: str) -> list[list[str]]:
    """The header cells of every table of the HTML."""
    out = []
    for table in re.findall(r"<table.*?</table>", html, re.S):
        head = re.search(r"<thead>(.*?)</thead>", table, re.S)
        if not head:
            continue
        cells = re.findall(r"<th[^>]*>(.*?)</th>", head.group(1), re.S)
        out.append([unescape(re.sub(r"<[^>]+>", " ", c)).split()[0] if c.strip() else ""
                    for c in cells])
    return out


def _pdf_text(path: Path) -> tuple[str, list[tuple[float, float, float, str]]]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    parts, placed = [], []
    for page in reader.pages:
        width = float(page.mediabox.width)

        def visit(text: str, cm: list, tm: list, _font: object, _size: float,
                  width: float = width) -> None:
            if text.strip():
                x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
                placed.append((x, 0.0, width, text.strip()))

        parts.append(page.extract_text(visitor_text=visit))
    return "\n".join(parts), placed


def test_every_header_and_year_of_every_table_is_in_the_pdf(rendered) -> None:
    html, path = rendered
    text, _placed = _pdf_text(path)
    flat = re.sub(r"\s+", " ", text)
    tables = _html_tables(html)
    assert len(tables) >= 8
    needed: Counter[str] = Counter()
    for headers in tables:
        for h in headers:
            if h:
                needed[h] += 1
    # the regional table's last columns, lost before (A4 portrait)
    assert needed["DU119"] >= 1 and needed["Alla"] >= 1
    assert "Alla personer" in flat and "DU119" in flat
    # every year after 2021 of the unit × year tables, split into blocks if needed
    for year in map(str, YEARS):
        assert needed[year] >= 2, year
    for header, count in needed.items():
        found = len(re.findall(rf"(?<![\w,]){re.escape(header)}(?![\w,])", flat))
        assert found >= count, (header, found, count)


def test_no_text_outside_the_page(rendered) -> None:
    _html, path = rendered
    _text, placed = _pdf_text(path)
    assert placed
    outside = [(x, t) for x, _y, width, t in placed if not -1 <= x <= width + 1]
    assert not outside, outside[:5]


def test_landscape_and_unit_names(rendered) -> None:
    from pypdf import PdfReader

    _html, path = rendered
    page = PdfReader(path).pages[0]
    assert float(page.mediabox.width) > float(page.mediabox.height)  # A4 landscape
    text, _ = _pdf_text(path)
    flat = re.sub(r"\s+", " ", text)
    assert "Mottagning Väst, allmänpsykiatri och beroende" in flat
    assert "U3" not in re.findall(r"\bU\d\b", flat)
    # the gap to AU119's target is written out for the region
    assert re.search(r"fler personer behöver få AU119 för att nå målet 50\s?%", flat)
