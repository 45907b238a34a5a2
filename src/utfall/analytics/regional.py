"""The regional indicator table (DOMAIN.md §6): persons and KVÅ codes per substance group and year.

Contract. A person counts in ``(dx_group, year)`` if they had a contact that calendar
year whose main diagnosis is in the F10–F19 group. They count in a KVÅ column if that
code was registered that year on such a contact: the procedure points at the contact
through ``procedure.contact_id``, or — when the procedure has no ``contact_id`` — it has
the same person, unit and date as the contact. The year is always the contact's year: a
procedure linked by ``contact_id`` belongs to that contact whatever its own date (e.g.
during an inpatient stay that crosses New Year), as in the catalogue's ``kva_*``
indicators (``docs/indicators.md``, "Choices worth knowing").
One person may count in several groups and columns, so values do not add up.

The counts are built as Ibis expressions only (no engine-specific SQL), so they run on
DuckDB, PostgreSQL and PySpark alike. Nothing here may be shown before it has passed
:func:`regional_table`, which applies disclosure control.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa

from utfall.analytics.disclosure import (
    RESULT_COLUMNS,
    DisclosureRules,
    Release,
    describe_applied,
    is_protected,
    load_rules,
    protect_release,
    protection_metadata,
)
from utfall.analytics.executor.backends import duckdb_tables
from utfall.analytics.schema import RESULT_SCHEMA

KVA_COLUMNS: tuple[str, ...] = ("AU119", "AU124", "DU119")
COUNT_COLUMNS: tuple[str, ...] = (*KVA_COLUMNS, "persons")
REGIONAL_COLUMNS: tuple[str, ...] = ("dx_group", "year", *COUNT_COLUMNS)

REGIONAL_SCHEMA = pa.schema(
    [("dx_group", pa.string()), ("year", pa.int32())] + [(c, pa.int64()) for c in COUNT_COLUMNS]
)
REGIONAL_DISPLAY_SCHEMA = pa.schema(
    [("dx_group", pa.string()), ("year", pa.int32())] + [(c, pa.string()) for c in COUNT_COLUMNS]
)

DX_GROUPS: tuple[str, ...] = tuple(f"F1{i}" for i in range(10))


# --------------------------------------------------------------------------- sources


def tables_from_parquet(folder: str | Path) -> dict[str, ir.Table]:
    """Canonical tables of a Parquet folder (``utfall export-analytics``) on DuckDB.

    Thin wrapper over :func:`utfall.analytics.executor.backends.duckdb_tables`; missing tables
    are empty with the canonical schema.
    """
    base = Path(folder)
    if not base.is_dir():
        raise FileNotFoundError(f"not a folder: {base}")
    return duckdb_tables(base)


def tables_from_arrow(tables: Mapping[str, pa.Table]) -> dict[str, ir.Table]:
    """Arrow tables (e.g. from the store) on an in-memory DuckDB; missing → empty."""
    return duckdb_tables(tables)


# --------------------------------------------------------------------------- counts


def _year(col: ir.DateValue) -> ir.IntegerValue:
    return col.year().cast("int32")


def regional_counts_expr(tables: Mapping[str, ir.Table]) -> ir.Table:
    """The Ibis expression behind :func:`regional_counts` (raw, unprotected counts)."""
    contact = tables["contact"]
    procedure = tables["procedure"]

    c = contact.filter(contact.dx_group.isin(DX_GROUPS) & contact.date.notnull()).select(
        "contact_id",
        "person_key",
        "unit_id",
        "date",
        "dx_group",
        year=_year(contact.date),
    )
    persons = c.group_by(["dx_group", "year"]).aggregate(persons=c.person_key.nunique())

    p = procedure.filter(procedure.kva_code.isin(KVA_COLUMNS))
    # (a) procedure points at its contact.
    linked = p.filter(p.contact_id.notnull())
    ca = c.view()
    via_id = linked.join(ca, linked.contact_id == ca.contact_id).select(
        dx_group=ca.dx_group,
        year=ca.year,
        kva_code=linked.kva_code,
        person_key=ca.person_key,
    )
    # (b) no contact_id: same person, unit and date as the contact.
    loose = p.filter(p.contact_id.isnull())
    cb = c.view()
    via_match = loose.join(
        cb,
        (loose.person_key == cb.person_key)
        & (loose.unit_id == cb.unit_id)
        & (loose.date == cb.date),
    ).select(
        dx_group=cb.dx_group,
        year=cb.year,
        kva_code=loose.kva_code,
        person_key=cb.person_key,
    )
    # the year is the contact's (a procedure linked by id counts whatever its own date)
    events = via_id.union(via_match, distinct=False)
    kva = events.group_by(["dx_group", "year"]).aggregate(
        **{code: events.person_key.nunique(where=events.kva_code == code) for code in KVA_COLUMNS}
    )

    joined = persons.left_join(kva, (persons.dx_group == kva.dx_group) & (persons.year == kva.year))
    return joined.select(
        dx_group=persons.dx_group,
        year=persons.year,
        **{code: kva[code].fill_null(0).cast("int64") for code in KVA_COLUMNS},
        persons=persons.persons.cast("int64"),
    ).order_by(["dx_group", "year"])


def regional_counts(tables: Mapping[str, ir.Table]) -> pa.Table:
    """Raw counts ``dx_group, year, AU119, AU124, DU119, persons`` (int64), sorted.

    One row per F-group and calendar year that has persons. Not for display: pass the
    result through :func:`protect_regional` (or use :func:`regional_table`).
    """
    result = regional_counts_expr(tables).to_pyarrow()
    return result.select(list(REGIONAL_COLUMNS)).cast(REGIONAL_SCHEMA)


# --------------------------------------------------------------------------- disclosure


def protect_regional(counts: pa.Table, rules: DisclosureRules | None = None) -> pa.Table:
    """The regional table protected on its own: count columns as display strings.

    Counts 1–4 (below the configured threshold) become ``<5``, zeros stay ``0``; no
    additive margins are published (one person may count in several cells), but each
    KVÅ column is at most ``persons``, so the attacker-driven secondary suppression of
    :func:`~utfall.analytics.disclosure.protect_release` still runs. With the
    ``cell_key`` method the counts get deterministic noise first. What is *published*
    must come from the whole release instead (:func:`regional_table`), so that its
    masks agree with the catalogue's ``dx_group`` cells.
    """
    release = protect_release(pa.table({c: [] for c in RESULT_COLUMNS}, schema=RESULT_SCHEMA),
                              rules, regional=counts)
    return regional_display(release, rules)


def regional_display(release: Release, rules: DisclosureRules | None = None) -> pa.Table:
    """The regional part of a protected release as the publishable display table."""
    rules = rules or load_rules()
    rows = release.regional_rows
    out: dict[str, list[Any]] = {
        "dx_group": [r["dx_group"] for r in rows],
        "year": [r["year"] for r in rows],
    }
    for col in COUNT_COLUMNS:
        out[col] = [r[col] for r in rows]
    table = pa.table(out, schema=REGIONAL_DISPLAY_SCHEMA)
    n_masked = sum(len(why) for why in release.regional_reasons)
    return table.replace_schema_metadata(protection_metadata(rules, n_masked))


def regional_reasons(release: Release) -> list[dict[str, str]]:
    """Per regional row: column → why it was masked (the recorded reasons)."""
    return [{c: str(why) for c, why in row.items()} for row in release.regional_reasons]


def regional_table(
    tables: Mapping[str, ir.Table], rules: DisclosureRules | None = None
) -> pa.Table:
    """The publishable regional table: the regional part of the protected release.

    The release (every indicator × breakdown plus this table) is protected as a whole,
    so a cell masked in the catalogue's ``dx_group`` breakdown is masked here too.
    Prefer :func:`utfall.analytics.runs.latest_release`, which stores the release once
    per data state.
    """
    from utfall.analytics.runs import compute_release

    return regional_display(compute_release(tables, rules), rules)


# --------------------------------------------------------------------------- rendering

_TEXT: dict[str, dict[str, str]] = {
    "sv": {
        "title": "Personer med missbruks- eller beroendediagnos som huvuddiagnos",
        "intro": (
            "Antal personer med kontakt där diagnosen var huvuddiagnos, per substansgrupp "
            "och år, och antal personer med respektive KVÅ-åtgärd registrerad samma år "
            "vid en sådan kontakt."
        ),
        "group": "Grupp",
        "year": "År",
        "persons": "Alla personer",
        "note": (
            "Samma person kan förekomma i flera celler (flera grupper och åtgärder), "
            "så värdena kan inte summeras."
        ),
        "disclosure": "Röjandekontroll",
        "other_lang": "English",
        "lang_name": "Svenska",
        "empty": "Inga kontakter med huvuddiagnos F10–F19 i underlaget.",
        "code_versions": "Kodverk",
    },
    "en": {
        "title": "Persons with a substance use diagnosis as main diagnosis",
        "intro": (
            "Number of persons with a contact where the diagnosis was the main diagnosis, "
            "by substance group and year, and number of persons with each KVÅ intervention "
            "registered the same year on such a contact."
        ),
        "group": "Group",
        "year": "Year",
        "persons": "All persons",
        "note": (
            "The same person may appear in several cells (several groups and "
            "interventions), so values do not add up."
        ),
        "disclosure": "Disclosure control",
        "other_lang": "Svenska",
        "lang_name": "English",
        "empty": "No contacts with a main diagnosis F10–F19 in the data.",
        "code_versions": "Code systems",
    },
}


def _check_display(table: pa.Table) -> None:
    """Refuse to render anything that has not passed disclosure control."""
    if not is_protected(table) or any(
        not pa.types.is_string(table.schema.field(c).type) for c in COUNT_COLUMNS
    ):
        raise TypeError("render the output of regional_table()/protect_regional(), not raw counts")


def group_label(dx_group: str, locale: str = "sv") -> str:
    """``F10 Alkohol`` / ``F10 Alcohol`` from the shipped ICD-10 table."""
    from utfall.domain.codes import code_systems

    spec = code_systems().substance_groups.get(dx_group, {})
    name = spec.get(locale) or spec.get("en") or ""
    return f"{dx_group} {name}".strip()


def kva_label(code: str, locale: str = "sv") -> str:
    """Name of a KVÅ code in ``locale``."""
    from utfall.domain.codes import code_systems

    spec = code_systems().kva.get(code, {})
    return spec.get(locale) or spec.get("en") or code


def render_regional_csv(table: pa.Table) -> str:
    """CSV with header exactly ``dx_group,year,AU119,AU124,DU119,persons`` (protected values)."""
    from utfall.reports.safe_cells import neutralise_row

    _check_display(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REGIONAL_COLUMNS)
    for row in table.to_pylist():
        writer.writerow(neutralise_row(row[c] for c in REGIONAL_COLUMNS))
    return buffer.getvalue()


def regional_html_fragment(table: pa.Table, locale: str = "sv") -> str:
    """The regional table as an HTML ``<table>`` plus notes, for embedding in reports."""
    _check_display(table)
    t = _TEXT[locale]
    head = "".join(
        f'<th scope="col" title="{html.escape(kva_label(c, locale))}">{c}'
        f'<br><span class="sub">{html.escape(kva_label(c, locale))}</span></th>'
        for c in KVA_COLUMNS
    )
    rows: list[str] = []
    previous = None
    for row in table.to_pylist():
        label = group_label(row["dx_group"], locale) if row["dx_group"] != previous else ""
        previous = row["dx_group"]
        cells = "".join(f'<td class="num">{html.escape(row[c])}</td>' for c in COUNT_COLUMNS)
        rows.append(
            f'<tr><th scope="row">{html.escape(label)}</th>'
            f'<td class="num">{row["year"]}</td>{cells}</tr>'
        )
    body = "\n".join(rows) or f'<tr><td colspan="6">{html.escape(t["empty"])}</td></tr>'
    rules_line = html.escape(rules_text(table, locale))
    return (
        f'<table class="regional">\n<thead><tr><th scope="col">{t["group"]}</th>'
        f'<th scope="col">{t["year"]}</th>{head}<th scope="col">{t["persons"]}</th></tr>'
        f"</thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        f'<p class="note">{html.escape(t["note"])}</p>\n'
        f'<p class="note"><strong>{t["disclosure"]}:</strong> {rules_line}</p>\n'
    )


def rules_text(table: pa.Table, locale: str = "sv") -> str:
    """The disclosure rules applied to a protected table, described in ``locale``."""
    return describe_applied(table, locale)


_PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1a1a1a; }}
table {{ border-collapse: collapse; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
thead th {{ vertical-align: bottom; }}
.sub {{ font-weight: normal; font-size: .8em; color: #555; }}
.note {{ max-width: 50rem; font-size: .9em; color: #333; }}
[hidden] {{ display: none; }}
nav button {{ margin-right: .5rem; }}
</style>
</head>
<body>
<nav aria-label="språk / language">{switch}</nav>
{sections}
<script>
function utfallLang(l) {{
  document.querySelectorAll('section[lang]').forEach(function (s) {{ s.hidden = s.lang !== l; }});
  document.documentElement.lang = l;
}}
</script>
</body>
</html>
"""


def render_regional_html(table: pa.Table, locale: str = "sv") -> str:
    """Self-contained HTML page, Swedish by default with English one click away."""
    _check_display(table)
    locales = [locale] + [x for x in _TEXT if x != locale]
    sections = []
    for loc in locales:
        t = _TEXT[loc]
        hidden = "" if loc == locale else " hidden"
        sections.append(
            f'<section lang="{loc}"{hidden}>\n<h1>{html.escape(t["title"])}</h1>\n'
            f'<p class="note">{html.escape(t["intro"])}</p>\n'
            f"{regional_html_fragment(table, loc)}</section>"
        )
    switch = "".join(
        f'<button type="button" onclick="utfallLang(\'{loc}\')">{_TEXT[loc]["lang_name"]}</button>'
        for loc in locales
    )
    return _PAGE.format(
        lang=locale,
        title=html.escape(_TEXT[locale]["title"]),
        switch=switch,
        sections="\n".join(sections),
    )


def regional_sheet_rows(table: pa.Table, locale: str = "sv") -> list[list[Any]]:
    """Header + rows for a spreadsheet (group label, year, protected strings)."""
    _check_display(table)
    t = _TEXT[locale]
    rows: list[list[Any]] = [[t["group"], "dx_group", t["year"], *KVA_COLUMNS, t["persons"]]]
    for row in table.to_pylist():
        rows.append(
            [
                group_label(row["dx_group"], locale),
                row["dx_group"],
                row["year"],
                *[_cell(row[c]) for c in COUNT_COLUMNS],
            ]
        )
    return rows


def _cell(display: str) -> Any:
    """Published numbers as numbers in spreadsheets, masks as text."""
    return int(display) if display.isdigit() else display


def render_regional_xlsx(
    table: pa.Table, path: str | Path | None = None, locale: str = "sv"
) -> bytes:
    """XLSX workbook (one sheet with the table, one with notes); returns the bytes."""
    from openpyxl import Workbook

    t = _TEXT[locale]
    wb = Workbook()
    ws = wb.active
    ws.title = "Regional" if locale == "en" else "Regionalt"
    for row in regional_sheet_rows(table, locale):
        ws.append(row)
    notes = wb.create_sheet("Notes" if locale == "en" else "Noter")
    notes.append([t["title"]])
    notes.append([t["intro"]])
    notes.append([t["note"]])
    notes.append([f"{t['disclosure']}: {rules_text(table, locale)}"])
    return workbook_bytes(wb, path)


def workbook_bytes(wb: Any, path: str | Path | None = None) -> bytes:
    """The XLSX bytes of an openpyxl workbook, also written to ``path`` when given."""
    from utfall.reports.safe_cells import neutralise_workbook

    neutralise_workbook(wb)  # no cell of any Utfall workbook is a formula
    buffer = io.BytesIO()
    wb.save(buffer)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
