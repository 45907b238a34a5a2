"""Spreadsheet-safe cell values for every CSV and XLSX Utfall writes.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by spreadsheet programs as a formula (CSV/formula injection: ``=HYPERLINK(...)``,
``=cmd|' /C calc'!A0``). Such values, which can come from any extract (unit names,
codes), are prefixed with ``'`` as OWASP recommends, so they show as text. Plain
numbers written as text (``-3``, ``+1.5``, ``-0,25``) stay as they are: a spreadsheet
reads them as the number they are, never as a formula.

Used by the regional and full report writers (CSV and XLSX, through
``neutralise_workbook``), ``utfall indicators --format csv`` (``neutralise_table``) and
the web downloads (``neutralise_row``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def neutralise(value: Any) -> Any:
    """``value`` made inert for spreadsheets (text only; other types unchanged)."""
    if not isinstance(value, str) or not value.startswith(FORMULA_LEAD):
        return value
    if _NUMBER.match(value):
        return value
    return "'" + value


def neutralise_row(values: Iterable[Any]) -> list[Any]:
    """One CSV/XLSX row with every text cell neutralised."""
    return [neutralise(v) for v in values]


def neutralise_workbook(wb: Any) -> Any:
    """Neutralise every text cell of an openpyxl workbook in place (returns it).

    openpyxl stores a string starting with ``=`` as a formula; after this no cell
    of the workbook is a formula.
    """
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str) and value.startswith(FORMULA_LEAD):
                    safe = neutralise(value)
                    if safe != value:
                        cell.value = safe
                        cell.data_type = "s"
    return wb


def neutralise_table(table: Any) -> Any:
    """A pyarrow table with every string column's values neutralised."""
    import pyarrow as pa

    columns, fields = [], []
    for field in table.schema:
        col = table.column(field.name)
        if pa.types.is_dictionary(col.type) and (pa.types.is_string(col.type.value_type) or
                                                 pa.types.is_large_string(col.type.value_type)):
            col = col.cast(col.type.value_type)
            field = field.with_type(col.type)
        fields.append(field)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pa.chunked_array(
                [pa.array([neutralise(v) for v in chunk.to_pylist()], type=col.type)
                 for chunk in col.chunks], type=col.type)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))
