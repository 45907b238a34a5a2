"""Malformed (and some edge-valid) extract folders for the SQLite = PostgreSQL suite.

Each case starts from the valid factory extract (``base``), which the suite has
already imported into both stores, and changes one thing. ``lines`` are stderr lines
that must appear exactly (``…`` at the end: a prefix).
"""

from __future__ import annotations

import codecs
import copy
import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from tests.foundation.extract_factory import P1, P2, P3, TABLES, write_extract

GIB = 1 << 30
TODAY = dt.datetime.now(ZoneInfo("Europe/Stockholm")).date().isoformat()
MOVED = (f"contacts.csv:2: person_id: contact 'C1' belongs to another person since import "
         f"batch 1 of {TODAY} (folder 'base'); a re-import may not move a record to another "
         "person")
NOT_UTF8 = "not valid UTF-8 (Latin-1 or Windows-1252?); save the file as UTF-8"


@dataclass
class Case:
    """One folder: how to build it, the expected exit code and stderr lines."""

    id: str
    build: Callable[[Path], None]
    exit: int
    lines: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)  # substrings of stdout (accepted cases)


def tables() -> dict[str, list[dict[str, str]]]:
    return copy.deepcopy(TABLES)


def _with(table: str, index: int, **changes: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        data = tables()
        data[table][index].update(changes)
        write_extract(folder, data)
    return build


def _append(table: str, **row: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        data = tables()
        data[table].append({**data[table][0], **row})
        write_extract(folder, data)
    return build


def _patch(name: str, old: bytes, new: bytes) -> Callable[[Path], None]:
    """The base extract with raw bytes of one file replaced (once)."""
    def build(folder: Path) -> None:
        write_extract(folder)
        path = folder / name
        raw = path.read_bytes()
        assert old in raw, (name, old)
        path.write_bytes(raw.replace(old, new, 1))
    return build


def _raw_append(name: str, tail: bytes) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        write_extract(folder)
        with (folder / name).open("ab") as fh:
            fh.write(tail)
    return build


def _giant_csv_field(folder: Path) -> None:
    """contacts.csv whose second data row ends in a 1 GiB other_dx field."""
    write_extract(folder)
    path = folder / "contacts.csv"
    lines = path.read_bytes().split(b"\r\n" if b"\r\n" in path.read_bytes() else b"\n")
    head = b"\n".join(lines[:2]) + b"\n" + lines[2].rsplit(b",", 1)[0] + b","
    block = b"F32.1;" * ((1 << 20) // 6) + b"F"  # about 1 MiB
    with path.open("wb") as fh:
        fh.write(head)
        written = 0
        while written < GIB:
            fh.write(block)
            written += len(block)
        fh.write(b"\n" + b"\n".join(lines[3:]))


def _many_fields(folder: Path) -> None:
    write_extract(folder)
    with (folder / "units.csv").open("ab") as fh:
        fh.write(b"U9" + b",x" * 40_000 + b"\n")


def _recode(name: str, codec: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        write_extract(folder)
        path = folder / name
        path.write_bytes(path.read_bytes().decode("utf-8").encode(codec))
    return build


def _semicolons(folder: Path) -> None:
    write_extract(folder)
    path = folder / "units.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8")


def _cr_only(folder: Path) -> None:
    write_extract(folder)
    path = folder / "units.csv"
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r"))


def _empty(name: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        write_extract(folder)
        (folder / name).write_bytes(b"")
    return build


def _duplicate_header(folder: Path) -> None:
    write_extract(folder)
    path = folder / "units.csv"
    text = path.read_text(encoding="utf-8").splitlines()
    text[0] = text[0] + ",name"
    text[1:] = [line + ",x" for line in text[1:]]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")


def _extra_header(name: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        data = tables()
        for row in data["units"]:
            row[name] = "1"
        write_extract(folder, data)
    return build


def _extra_file(name: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        write_extract(folder)
        (folder / name).write_text("a\n1\n", encoding="utf-8")
    return build


def _parquet(table: str, make: Callable[[list[dict[str, str]]], pa.Table]
             ) -> Callable[[Path], None]:
    """The base extract with ``table`` as Parquet built by ``make(rows)``."""
    def build(folder: Path) -> None:
        write_extract(folder)
        (folder / f"{table}.csv").unlink()
        pq.write_table(make(tables()[table]), folder / f"{table}.parquet")
    return build


def _column(rows: list[dict[str, str]], name: str, array: pa.Array) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    return table.set_column(table.column_names.index(name), name, array)


def _invalid_utf8(rows: list[dict[str, str]]) -> pa.Table:
    values = [r["name"].encode() for r in rows]
    values[1] = b"Malm\xf6"  # Latin-1 bytes in a string column
    return _column(rows, "name", pa.array(values, pa.binary()).view(pa.string()))


def _giant_parquet(rows: list[dict[str, str]]) -> pa.Table:
    values: list[str | None] = [r["other_dx"] or None for r in rows]
    values[0] = "F32.1;" * ((256 << 20) // 6)  # 256 MiB in one value
    return _column(rows, "other_dx", pa.array(values, pa.large_string()))


def _typed_parquet(rows: list[dict[str, str]]) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    for name in ("date", "end_date"):
        values = [dt.date.fromisoformat(r[name]) if r[name] else None for r in rows]
        table = table.set_column(table.column_names.index(name), name,
                                 pa.array(values, pa.date32()))
    index = table.column_names.index("contact_type")
    return table.set_column(index, "contact_type", table["contact_type"].dictionary_encode())


def _int_items(rows: list[dict[str, str]]) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    for name in [n for n in table.column_names if n.startswith("item_")]:
        table = table.set_column(table.column_names.index(name), name,
                                 pa.array([int(r[name]) for r in rows], pa.int64()))
    return table


def _truncated_parquet(folder: Path) -> None:
    write_extract(folder)
    (folder / "units.csv").unlink()
    pq.write_table(pa.Table.from_pylist(tables()["units"]), folder / "units.parquet")
    raw = (folder / "units.parquet").read_bytes()
    (folder / "units.parquet").write_bytes(raw[: len(raw) // 2])


def _manifest(content: bytes) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        write_extract(folder)
        (folder / "manifest.json").write_bytes(content)
    return build


def _bom_crlf(folder: Path) -> None:
    write_extract(folder)
    for path in folder.glob("*.csv"):
        text = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        path.write_bytes(codecs.BOM_UTF8 + text)


def _quote_all(folder: Path) -> None:
    for name, rows in tables().items():
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL,
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.csv").write_text(buf.getvalue(), encoding="utf-8")


def _at_the_limits(folder: Path) -> None:
    data = tables()
    unit = "U" * 64
    data["units"].append({**data["units"][0], "unit_id": unit,
                          "name": ("Beroendemottagningen Malmö åäö " * 7)[:200],
                          "organisation": ("Region Skåne " * 16)[:200],
                          "principal_type": "private"})
    data["contacts"].append({**data["contacts"][0], "contact_id": "K" * 64, "unit_id": unit,
                             "other_dx": ";".join(["F32.1"] * 33)[:197]})
    data["assessments"][1]["stage"] = "s" * 40
    write_extract(folder, data)


def _header_only(folder: Path) -> None:
    write_extract(folder)
    path = folder / "medications.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")


def _move_contact(folder: Path) -> None:
    data = tables()
    data["contacts"][0]["person_id"] = P2
    data["procedures"][0]["person_id"] = P2
    write_extract(folder, data)


P1_DIGITS, P2_DIGITS = P1.replace("-", ""), P2.replace("-", "")

CASES: list[Case] = [
    # --- CSV structure, encodings, sizes ---
    Case("csv-unterminated-quote", _raw_append(
        "units.csv", '"U9,Ny enhet,Region Skåne,region,laro,\n'.encode()), 1,
        ["units.csv:5: unit_id: a quoted field is not closed before the end of the file"]),
    Case("csv-quote-inside-unquoted-field", _patch(
        "units.csv", b"Beroendemottagningen", b'Beroende"mottagningen'), 1,
        ['units.csv:2: name: a quote (") inside an unquoted field; quote the whole field '
         "and double the quotes inside it"]),
    Case("csv-text-after-closing-quote", _patch(
        "units.csv", b"Beroendemottagningen", b'"Beroende"mottagningen'), 1,
        ["units.csv:2: name: text after the closing quote of a quoted field"]),
    Case("csv-1gib-field", _giant_csv_field, 1,
         ["contacts.csv:3: other_dx: line longer than 64 KiB"]),
    Case("csv-giant-line-many-fields", _many_fields, 1,
         ["units.csv:5: (line): line longer than 64 KiB"]),
    Case("csv-latin1", _recode("units.csv", "latin-1"), 1, [f"units.csv:2: (file): {NOT_UTF8}"]),
    Case("csv-utf16", _recode("persons.csv", "utf-16"), 1,
         ["persons.csv:1: (file): the file is UTF-16; save it as UTF-8"]),
    Case("csv-semicolon-separated", _semicolons, 1,
         ["units.csv:1: (file): columns are separated by ';'; extract format v1 uses commas"]),
    Case("csv-cr-only-line-endings", _cr_only, 1,
         ["units.csv:1: (file): lines end with CR only; use LF or CRLF line endings"]),
    Case("csv-ragged-row", _raw_append("medications.csv", b"a,b,c,d,e,f,g\n"), 1,
         ["medications.csv:4: (file): 7 fields, the header has 5"]),
    Case("csv-empty-file", _empty("persons.csv"), 1,
         ["persons.csv:1: (file): the file is empty; a header row is required"]),
    Case("csv-duplicate-header", _duplicate_header, 1,
         ["units.csv:1: name: column appears twice in the header"]),
    # --- characters ---
    Case("nul-in-name", _with("units", 0, name="Beroende\x00mottagningen"), 1,
         ["units.csv:2: name: contains the control character U+0000, not allowed here"]),
    Case("escape-in-contact-id", _with("contacts", 1, contact_id="C\x1b[31m2"), 1,
         ["contacts.csv:3: contact_id: contains the control character U+001B, not allowed "
          "here"]),
    Case("bidi-override-in-contact-id", _with("contacts", 1, contact_id="C\u202e2"), 1,
         ["contacts.csv:3: contact_id: contains the control character U+202E, not allowed "
          "here"]),
    Case("tab-in-stage", _with("assessments", 0, stage="in\ttake"), 1,
         ["assessments.csv:2: stage: contains the control character U+0009, not allowed "
          "here"]),
    # --- lengths (PostgreSQL used to reject these at load, SQLite stored them) ---
    Case("unit-id-100", _append("units", unit_id="U" * 100), 1,
         ["units.csv:5: unit_id: longer than 64 characters (100)"]),
    Case("unit-name-300", _with("units", 0, name="N" * 300), 1,
         ["units.csv:2: name: longer than 200 characters (300)"]),
    Case("organisation-201", _with("units", 2, organisation="O" * 201), 1,
         ["units.csv:4: organisation: longer than 200 characters (201)"]),
    Case("contact-id-80", _with("contacts", 1, contact_id="C" * 80), 1,
         ["contacts.csv:3: contact_id: longer than 64 characters (80)"]),
    Case("stage-60", _with("assessments", 0, stage="s" * 60), 1,
         ["assessments.csv:2: stage: longer than 40 characters (60)"]),
    Case("instrument-41", _with("assessments", 0, instrument="a" * 41), 1,
         ["assessments.csv:2: instrument: longer than 40 characters (41)"]),
    Case("other-dx-250", _with("contacts", 0, other_dx=";".join(["F32.1"] * 42)[:250]), 1,
         ["contacts.csv:2: other_dx: longer than 200 characters (250)"]),
    Case("person-id-30", _append("persons", person_id="1" * 30), 1,
         ["persons.csv:6: person_id: longer than 13 characters (30)"]),
    Case("item-25", _with("assessments", 0, item_1="1" * 25), 1,
         ["assessments.csv:2: item_1: longer than 20 characters (25)"]),
    # --- identity numbers in the wrong place are never echoed ---
    Case("pnr-as-unit-id", _with("contacts", 0, unit_id=P2), 1,
         ["contacts.csv:2: unit_id: no unit '<masked>' in units"]),
    Case("pnr-as-contact-ref", _with("procedures", 0, contact_id=P2_DIGITS), 1,
         ["procedures.csv:2: contact_id: no contact '<masked>' in contacts"]),
    Case("pnr-as-municipality", _with("persons", 0, municipality_code=P1_DIGITS[2:]), 1,
         ["persons.csv:2: municipality_code: '<masked>' is not a 4-digit municipality code"]),
    Case("pnr-as-sex", _with("persons", 1, sex=P2), 1,
         ["persons.csv:3: sex: '<masked>' is not one of: M, F"]),
    Case("pnr-as-date", _with("contacts", 0, date=P1), 1,
         ["contacts.csv:2: date: '<masked>' is not a date in the form YYYY-MM-DD"]),
    Case("pnr-as-instrument", _with("assessments", 0, instrument=P3), 1,
         ["assessments.csv:2: instrument: unknown instrument '<masked>' (known: …"]),
    Case("pnr-as-column-name", _extra_header(P3.replace("-", "")), 1,
         ["units.csv:1: <masked>: unknown column (not in extract format v1)"]),
    Case("pnr-as-file-name", _extra_file(P1_DIGITS + ".csv"), 1,
         ["<masked>.csv:1: (file): not a table of extract format v1"]),
    # --- Parquet ---
    Case("parquet-list-column", _parquet("contacts", lambda rows: _column(
        rows, "other_dx", pa.array([[r["other_dx"]] for r in rows], pa.list_(pa.string())))), 1,
        ["contacts.parquet:1: other_dx: Parquet type list is not allowed (text, whole number, "
         "decimal number or date expected)"]),
    Case("parquet-struct-column", _parquet("units", lambda rows: _column(
        rows, "name", pa.array([{"sv": r["name"]} for r in rows]))), 1,
        ["units.parquet:1: name: Parquet type struct is not allowed (text, whole number, "
         "decimal number or date expected)"]),
    Case("parquet-binary-column", _parquet("units", lambda rows: _column(
        rows, "name", pa.array([r["name"].encode() for r in rows], pa.binary()))), 1,
        ["units.parquet:1: name: Parquet type binary is not allowed (text, whole number, "
         "decimal number or date expected)"]),
    Case("parquet-boolean-column", _parquet("persons", lambda rows: _column(
        rows, "sex", pa.array([r["sex"] == "M" for r in rows]))), 1,
        ["persons.parquet:1: sex: Parquet type boolean is not allowed (text, whole number, "
         "decimal number or date expected)"]),
    Case("parquet-invalid-utf8", _parquet("units", _invalid_utf8), 1,
         ["units.parquet:3: name: not valid UTF-8"]),
    Case("parquet-256mib-field", _parquet("contacts", _giant_parquet), 1,
         ["contacts.parquet:2: other_dx: rows 2–7 hold values of more than 64 KiB each on "
          "average (field too large)"]),
    Case("parquet-nul-in-string", _parquet("units", lambda rows: _column(
        rows, "name", pa.array(["A\x00B"] + [r["name"] for r in rows[1:]]))), 1,
        ["units.parquet:2: name: contains the control character U+0000, not allowed here"]),
    Case("parquet-contact-id-80", _parquet("contacts", lambda rows: _column(
        rows, "contact_id", pa.array(["C" * 80] + [r["contact_id"] for r in rows[1:]]))), 1,
        ["contacts.parquet:2: contact_id: longer than 64 characters (80)"]),
    Case("parquet-truncated", _truncated_parquet, 1,
         ["units.parquet:1: (file): cannot be read as Parquet: …"]),
    # --- manifest ---
    Case("manifest-not-json", _manifest(b"{synthetic: yes"), 1,
         ["manifest.json:1: (file): not valid JSON: …"]),
    Case("manifest-too-large", _manifest(b'{"x": "' + b"a" * (2 << 20) + b'"}'), 1,
         ["manifest.json:1: (file): larger than 1024 KiB"]),
    Case("manifest-bad-source", _manifest(json.dumps({"source": "ehr a"}).encode()), 1,
         ["manifest.json:1: source: 'ehr a' is not a source name (1–30 letters A–Z, digits, "
          "'.', '_' or '-', starting with a letter or digit)"]),
    # --- re-import against the stored base ---
    Case("reimport-moves-contact-to-another-person", _move_contact, 1, [MOVED]),
    # --- accepted on both stores ---
    Case("ok-bom-and-crlf", _bom_crlf, 0),
    Case("ok-all-fields-quoted", _quote_all, 0),
    Case("ok-values-at-the-limits", _at_the_limits, 0,
         stdout=["units", "contacts"]),
    Case("ok-newline-and-tab-in-quoted-name",
         _with("units", 0, name="Beroende-\nmottagningen\tMalmö"), 0,
         stdout=["name 1"]),
    Case("ok-trailing-blank-lines", _raw_append("units.csv", b"\n\n"), 0),
    Case("ok-header-only-table", _header_only, 0),
    Case("ok-parquet-typed-columns", lambda folder: (
        _parquet("contacts", _typed_parquet)(folder),
        (folder / "assessments.csv").unlink(),
        pq.write_table(_int_items(tables()["assessments"]), folder / "assessments.parquet")),
         0),
    Case("ok-reimport-corrects-a-date", _with("contacts", 3, date="2020-11-21"), 0,
         stdout=["date 1"]),
]
