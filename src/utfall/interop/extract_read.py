"""Reading extract tables (CSV or Parquet) into all-string Polars frames.

Every frame gets a ``_line`` column: the line an editor shows for that row
(header = line 1, first data row = line 2; for Parquet, row number + 1).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from utfall.interop.extract_scan import read_parquet_checked, scan_csv, shown
from utfall.interop.extract_spec import LINE_CAP

LINE = "_line"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about an extract, printed as ``file:line: column: reason``."""

    file: str
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.column}: {self.reason}"


@dataclass
class RawTable:
    """A table as read: file name, header, all-string frame (None if unreadable)."""

    name: str
    file: str
    header: list[str]
    frame: pl.DataFrame | None
    problems: list[Problem] = field(default_factory=list)


def read_table(folder: Path, name: str) -> RawTable | None:
    """Read ``name`` (``units``, ``contacts``…) from ``folder``; None if the file is absent."""
    csv_path, pq_path = folder / f"{name}.csv", folder / f"{name}.parquet"
    if csv_path.exists() and pq_path.exists():
        file = f"{name}.csv"
        return RawTable(name, file, [], None, [Problem(
            file, 1, "(file)", f"both {name}.csv and {name}.parquet exist; keep one")])
    path = csv_path if csv_path.exists() else pq_path if pq_path.exists() else None
    if path is None:
        return None
    try:
        return _read_csv(path, name) if path is csv_path else _read_parquet(path, name)
    except (Exception, pl.exceptions.PanicException) as exc:  # never a traceback for input
        return _problem_table(name, path.name, 1,
                              f"cannot be read ({type(exc).__name__}: {shown(exc, 80)})")


def _problem_table(name: str, file: str, line: int, reason: str) -> RawTable:
    return RawTable(name, file, [], None, [Problem(file, line, "(file)", reason)])


def _read_csv(path: Path, name: str) -> RawTable:
    file = path.name
    with path.open("rb") as fh:
        first = fh.readline(LINE_CAP + 1)
    if not first.strip():
        return _problem_table(name, file, 1, "the file is empty; a header row is required")
    if first[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return _problem_table(name, file, 1, "the file is UTF-16; save it as UTF-8")
    if len(first) > LINE_CAP:
        return _problem_table(name, file, 1, f"line longer than {LINE_CAP // 1024} KiB")
    try:
        first_text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _problem_table(name, file, 1, "not valid UTF-8 (Latin-1 or Windows-1252?); "
                                             "save the file as UTF-8")
    if "\r" in first_text.rstrip("\r\n"):
        return _problem_table(name, file, 1, "lines end with CR only; use LF or CRLF "
                                             "line endings")
    header = [h.strip() for h in next(csv.reader([first_text.rstrip("\r\n")]), [])]
    if len(header) == 1 and ";" in header[0]:
        return _problem_table(name, file, 1, "columns are separated by ';'; extract format "
                                             "v1 uses commas")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        return RawTable(name, file, [], None, [
            Problem(file, 1, shown(h) or "(empty)", "column appears twice in the header")
            for h in twice])
    scan = scan_csv(path, header)
    if scan.problem:
        line, column, reason = scan.problem
        return RawTable(name, file, [], None, [Problem(file, line, column, reason)])
    try:
        frame = pl.read_csv(
            path,
            has_header=True,
            infer_schema=False,
            encoding="utf8",
            new_columns=header,
            raise_if_empty=False,
        )
    except Exception as exc:  # polars raises several error types for malformed CSV
        return _locate_csv_fault(path, name, header, exc)
    frame = _strip_and_null(frame)
    lines: list[int] | pl.Series
    if scan.multiline:
        lines = _physical_lines(path)
        if len(lines) != frame.height:
            return _problem_table(name, file, 1, "cannot be read as CSV consistently "
                                                 "(line breaks inside quoted fields)")
    else:
        lines = pl.int_range(2, frame.height + 2, eager=True)
    frame = frame.with_columns(pl.Series(LINE, lines, pl.Int64))
    if frame.width > 1:  # blank lines (every field empty) carry nothing: skipped
        frame = frame.filter(~pl.all_horizontal(pl.exclude(LINE).is_null()))
    return RawTable(name, file, header, frame)


def _strip_and_null(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = [pl.col(c).str.strip_chars() for c in frame.columns]
    frame = frame.with_columns(exprs)
    return frame.with_columns(
        [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in frame.columns]
    )


def _reader(fh):
    csv.field_size_limit(LINE_CAP)
    return csv.reader(fh)


def _physical_lines(path: Path) -> list[int]:
    """Editor line of each data row when quoted fields contain newlines."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = _reader(fh)
        next(reader, None)
        starts = []
        line = reader.line_num + 1
        for _row in reader:
            starts.append(line)
            line = reader.line_num + 1
    return starts


def _locate_csv_fault(path: Path, name: str, header: list[str], exc: Exception) -> RawTable:
    """Find the first ragged row for a precise message (the file passed :func:`scan_csv`,
    so it is UTF-8 with bounded lines; the parser's own message may quote data and is
    never shown)."""
    file = path.name
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = _reader(fh)
            next(reader, None)
            line = reader.line_num + 1
            for row in reader:
                if len(row) > len(header):
                    return _problem_table(
                        name, file, line, f"{len(row)} fields, the header has {len(header)}")
                line = reader.line_num + 1
    except (csv.Error, UnicodeDecodeError) as error:
        return _problem_table(name, file, 1, f"cannot be read as CSV: {shown(error, 80)}")
    return _problem_table(name, file, 1, f"cannot be read as CSV ({type(exc).__name__})")


def _read_parquet(path: Path, name: str) -> RawTable:
    file = path.name
    checked = read_parquet_checked(path)
    if checked.table is None:
        return RawTable(name, file, [], None,
                        [Problem(file, line, column, reason)
                         for line, column, reason in checked.problems])
    table = checked.table
    columns = [_to_string(col) for col in table.columns]
    strings = pa.Table.from_arrays(columns, names=table.column_names)
    frame = _strip_and_null(pl.from_arrow(strings))  # type: ignore[arg-type]
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - from_arrow of a Table
        raise TypeError("expected a DataFrame")
    frame = frame.with_columns(pl.int_range(2, frame.height + 2).cast(pl.Int64).alias(LINE))
    return RawTable(name, file, list(table.column_names), frame)


def _to_string(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m-%d")
    if pa.types.is_floating(col.type):
        # whole floats (e.g. 3.0 from pandas with NaN) print as integers
        as_int = pc.cast(col, pa.int64(), safe=False)
        whole = pc.equal(pc.cast(as_int, col.type), col)
        return pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(col, pa.string()))
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return pc.cast(col, pa.string())


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """CSV of a frame without header (used for PostgreSQL COPY)."""
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False)
    return buf.getvalue()
