"""Protected result tables: the long indicator format, display strings, metadata stamps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from utfall.analytics.disclosure.cellkey import cell_key_noise, coordinate_key
from utfall.analytics.disclosure.reasons import Reason
from utfall.analytics.disclosure.rules import DisclosureRules
from utfall.analytics.schema import RESULT_SCHEMA

RESULT_COLUMNS: tuple[str, ...] = tuple(RESULT_SCHEMA.names)
DISPLAY_COLUMNS: tuple[str, ...] = (
    "numerator_display",
    "denominator_display",
    "value_display",
    "ci_low_display",
    "ci_high_display",
)
PROTECTED_KEY = b"utfall_disclosure_version"


@dataclass
class Row:
    """One indicator result row while it is being protected."""

    numerator: int | None
    denominator: int | None
    values: dict[str, float | None]
    reasons: dict[str, list[Reason]] = field(default_factory=dict)

    def mask(self, column: str, reason: Reason) -> None:
        found = self.reasons.setdefault(column, [])
        if reason not in found:
            found.append(reason)


def as_int(v: Any) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v)


def protection_metadata(rules: DisclosureRules, suppressed_cells: int) -> dict[bytes, bytes]:
    """Schema metadata stamped on every protected table (checked before rendering)."""
    return {
        PROTECTED_KEY: rules.version.encode(),
        b"disclosure_method": rules.method.encode(),
        b"disclosure_rules_sv": rules.describe("sv").encode(),
        b"disclosure_rules_en": rules.describe("en").encode(),
        b"suppressed_cells": str(suppressed_cells).encode(),
    }


def describe_applied(table: pa.Table, locale: str = "sv") -> str:
    """The description of the rules that were applied to a protected ``table``."""
    meta = table.schema.metadata or {}
    key = f"disclosure_rules_{locale}".encode()
    return meta.get(key, meta.get(b"disclosure_rules_en", b"")).decode()


def is_protected(table: pa.Table) -> bool:
    """True if ``table`` came out of disclosure control (``apply_disclosure`` etc.)."""
    return PROTECTED_KEY in (table.schema.metadata or {})


def rows_of(results: pa.Table) -> tuple[list[dict[str, Any]], list[Row]]:
    """The input rows and their working copies (counts as ints, values as floats)."""
    missing = [c for c in RESULT_COLUMNS if c not in results.column_names]
    if missing:
        raise ValueError(f"indicator results lack columns: {missing}")
    data = results.to_pylist()
    rows = [
        Row(as_int(r["numerator"]), as_int(r["denominator"]),
            {c: (None if r[c] is None else float(r[c])) for c in ("value", "ci_low", "ci_high")})
        for r in data
    ]
    return data, rows


def apply_cell_key(data: Sequence[dict[str, Any]], rows: Sequence[Row],
                   rules: DisclosureRules) -> None:
    """Perturb numerators and denominators; rescale value and interval accordingly."""
    for r, row in zip(data, rows, strict=True):
        coords = (r["indicator_id"], r["period"], r["breakdown"], r["level"])
        base = r.get("cell_key")
        new: dict[str, int | None] = {}
        for col in ("numerator", "denominator"):
            v = getattr(row, col)
            if v is None:
                new[col] = None
                continue
            key = (
                (int(base) + (0 if col == "numerator" else 7919)) % (1 << rules.cell_key_bits)
                if base is not None
                else coordinate_key(*coords, col, bits=rules.cell_key_bits)
            )
            new[col] = v + cell_key_noise(v, key, rules)
        num, den = new["numerator"], new["denominator"]
        if num is not None and den is not None and num > den:
            num = den
        vals = row.values
        if (row.numerator is not None and row.denominator and num is not None and den
                and row.numerator > 0 and vals["value"] is not None):
            ratio = (num / den) / (row.numerator / row.denominator)
            for c in ("value", "ci_low", "ci_high"):
                old = vals[c]
                if old is not None:
                    vals[c] = old * ratio
        row.numerator, row.denominator = num, den


def mask_values(rows: Sequence[Row], rules: DisclosureRules) -> None:
    """Withhold value and interval for small denominators and masked counts."""
    for row in rows:
        if row.denominator is not None and row.denominator < rules.min_denominator:
            row.mask("value", Reason.small_denominator(rules))
        if "numerator" in row.reasons:
            row.mask("value", Reason.derived("numerator"))
        if "denominator" in row.reasons:
            row.mask("value", Reason.derived("denominator"))
        if "value" in row.reasons:
            for c in ("value", "ci_low", "ci_high"):
                row.values[c] = None


def _fmt_value(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"


def assemble(results: pa.Table, data: Sequence[dict[str, Any]], rows: Sequence[Row],
             rules: DisclosureRules) -> pa.Table:
    """The protected long table: masked counts nulled, reasons and display strings added."""
    out: dict[str, list[Any]] = {c: [] for c in RESULT_COLUMNS}
    out.update({"suppressed": [], "suppression_reason": []})
    out.update({c: [] for c in DISPLAY_COLUMNS})
    for r, row in zip(data, rows, strict=True):
        for c in ("indicator_id", "period", "breakdown", "level"):
            out[c].append(r[c])
        for col in ("numerator", "denominator"):
            v = getattr(row, col)
            why = row.reasons.get(col)
            out[col].append(None if why else v)
            disp = why[0].display_text(rules) if why else "" if v is None else str(v)
            out[f"{col}_display"].append(disp)
        for c in ("value", "ci_low", "ci_high"):
            out[c].append(row.values[c])
            if "value" in row.reasons and r[c] is not None:
                out[f"{c}_display"].append(rules.value_display)
            else:
                val = row.values[c]
                out[f"{c}_display"].append("" if val is None else _fmt_value(val))
        reasons = [f"{why} ({col})" for col, whys in row.reasons.items() for why in whys]
        out["suppressed"].append(bool(reasons))
        out["suppression_reason"].append("; ".join(reasons) if reasons else None)

    schema_fields = []
    for c in RESULT_COLUMNS:
        typ = results.schema.field(c).type
        if c in ("numerator", "denominator"):
            typ = pa.int64()
        elif c in ("value", "ci_low", "ci_high"):
            typ = pa.float64()
        schema_fields.append(pa.field(c, typ))
    schema_fields += [
        pa.field("suppressed", pa.bool_()),
        pa.field("suppression_reason", pa.string()),
    ]
    schema_fields += [pa.field(c, pa.string()) for c in DISPLAY_COLUMNS]
    extra = [c for c in results.column_names if c not in RESULT_COLUMNS and c != "cell_key"]
    table = pa.Table.from_pydict(out, schema=pa.schema(schema_fields))
    for c in extra:
        table = table.append_column(c, results[c])
    n_masked = sum(1 for s in out["suppressed"] if s)
    return table.replace_schema_metadata(protection_metadata(rules, n_masked))
