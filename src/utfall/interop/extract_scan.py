"""Structural checks of extract files before they are parsed, with bounded memory.

A CSV file is streamed once in chunks: it must be UTF-8, no line (or quoted record)
may exceed :data:`~utfall.interop.extract_spec.LINE_CAP` bytes, and quotes must follow
RFC 4180 as the parser reads them (a quoted field is closed before the end of the
file; no quote inside an unquoted field; nothing between a closing quote and the next
comma). A Parquet file's schema and column-chunk sizes are checked from its footer
before any data is read. Values shown in messages go through :func:`shown`: control
characters replaced, long values cut, identity-number-like digit runs masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from utfall.interop.extract_spec import FORBIDDEN_CHARS, LINE_CAP

SHOWN_MAX = 40
#: 10 or 12 digits with an optional separator: anything that may be an identity number.
ID_LIKE = r"\d{6}(?:\d{2})?[-+]?\d{4}"
MASK = "<masked>"
_ID_LIKE_RE = re.compile(ID_LIKE)
_UNPRINTABLE = FORBIDDEN_CHARS  # the same class for Python's re and Polars' regex
_UNPRINTABLE_RE = re.compile(_UNPRINTABLE)
CHUNK = 4 << 20
# one complete record without a line break inside quotes (the fast path of the scanner)
_FIELD = r'(?:"(?:[^"]|"")*"|[^",\r\n]*)'
_RECORD_RE = re.compile(rf"{_FIELD}(?:,{_FIELD})*\r?")


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """A value safe to print in a message: identity numbers masked, no control
    characters, at most ``limit`` characters."""
    text = _UNPRINTABLE_RE.sub("?", _ID_LIKE_RE.sub(MASK, str(value)))
    return text if len(text) <= limit else text[:limit] + "…"


def shown_expr(expr: pl.Expr, limit: int = SHOWN_MAX) -> pl.Expr:
    """:func:`shown` as a Polars expression (evaluated on error rows only)."""
    text = expr.cast(pl.String).str.replace_all(ID_LIKE, MASK) \
        .str.replace_all(_UNPRINTABLE, "?")
    return pl.when(text.str.len_chars() > limit).then(
        text.str.slice(0, limit) + pl.lit("…")).otherwise(text)


@dataclass
class CsvScan:
    """Outcome of :func:`scan_csv`: the first structural problem (if any)."""

    problem: tuple[int, str, str] | None = None  # (line, column, reason)
    multiline: bool = False  # some quoted field holds a line break
    lines: int = 0


@dataclass
class _QuoteState:
    state: str = "start"  # start | unquoted | quoted | quote (a quote seen in a quoted field)
    field_no: int = 0
    open_line: int = 0  # line where the record's open quoted field began
    open_field: int = 0
    record_bytes: int = 0
    extra: dict = field(default_factory=dict)


def _column(header: list[str], index: int) -> str:
    return shown(header[index]) if index < len(header) else "(line)"


def scan_csv(path: Path, header: list[str]) -> CsvScan:
    """Stream ``path`` once; report the first encoding, size or quoting problem."""
    result = CsvScan()
    quote = _QuoteState()
    line_no = 0  # lines completed so far
    carry = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            data = carry + chunk
            if not chunk:
                complete, carry = data, b""
            else:
                cut = data.rfind(b"\n") + 1
                complete, carry = data[:cut], data[cut:]
            if complete:
                problem = _scan_block(complete, line_no, header, quote, result)
                if problem:
                    result.problem = problem
                    return result
                line_no += complete.count(b"\n") + (0 if complete.endswith(b"\n") else 1)
            if len(carry) > LINE_CAP:
                column = _field_at(carry[:LINE_CAP], header) if quote.state != "quoted" else None
                result.problem = _too_long(line_no + 1, column, header, quote)
                return result
            if not chunk:
                break
    result.lines = line_no
    if quote.state == "quoted":
        result.problem = (quote.open_line, _column(header, quote.open_field),
                          "a quoted field is not closed before the end of the file")
    return result


def _too_long(line: int, column: int | None, header: list[str],
              quote: _QuoteState) -> tuple[int, str, str]:
    if quote.state == "quoted":
        return (quote.open_line, _column(header, quote.open_field),
                f"a quoted field runs over more than {LINE_CAP // 1024} KiB "
                "(unclosed quote?)")
    name = _column(header, column) if column is not None else "(line)"
    return (line, name, f"line longer than {LINE_CAP // 1024} KiB")


def _field_at(prefix: bytes, header: list[str]) -> int:
    """Index of the field the ``prefix`` of a line ends in (commas outside quotes)."""
    inside = False
    index = 0
    for byte in prefix:
        if byte == 0x22:
            inside = not inside
        elif byte == 0x2C and not inside:
            index += 1
    return index


def _scan_block(block: bytes, first: int, header: list[str], quote: _QuoteState,
                result: CsvScan) -> tuple[int, str, str] | None:
    """Check complete lines ``block`` (starting after line ``first``)."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = first + block.count(b"\n", 0, exc.start) + 1
        if first == 0 and block[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return (1, "(file)", "the file is UTF-16; save it as UTF-8")
        return (at, "(file)", "not valid UTF-8 (Latin-1 or Windows-1252?); save the "
                              "file as UTF-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if max(map(len, lines), default=0) > LINE_CAP // 4 \
            and max(len(x.encode("utf-8")) for x in lines) > LINE_CAP:
        index = next(i for i, x in enumerate(lines) if len(x.encode("utf-8")) > LINE_CAP)
        raw = lines[index].encode("utf-8")[:LINE_CAP]
        return _too_long(first + index + 1, _field_at(raw, header), header, quote)
    if quote.state != "quoted" and '"' not in text:
        return None
    for offset, line in enumerate(lines):
        number = first + offset + 1
        if quote.state != "quoted" and '"' not in line:
            continue
        if quote.state != "quoted" and _RECORD_RE.fullmatch(line):
            continue
        problem = _scan_line(line, number, header, quote, result)
        if problem:
            return problem
    return None


def _scan_line(line: str, number: int, header: list[str], quote: _QuoteState,
               result: CsvScan) -> tuple[int, str, str] | None:
    """Character-level RFC 4180 state machine for one line (rare: only lines that
    open or continue a multi-line quoted field, or are malformed)."""
    if quote.state == "quoted":
        result.multiline = True
        quote.record_bytes += len(line) + 1
        if quote.record_bytes > LINE_CAP:
            return _too_long(number, None, header, quote)
    else:
        quote.state, quote.field_no, quote.record_bytes = "start", 0, len(line)
    for char in line:
        state = quote.state
        if state == "start":
            if char == '"':
                quote.state, quote.open_line, quote.open_field = "quoted", number, quote.field_no
            elif char == ",":
                quote.field_no += 1
            elif char != "\r":
                quote.state = "unquoted"
        elif state == "unquoted":
            if char == ",":
                quote.state, quote.field_no = "start", quote.field_no + 1
            elif char == '"':
                return (number, _column(header, quote.field_no),
                        'a quote (") inside an unquoted field; quote the whole field and '
                        'double the quotes inside it')
        elif state == "quoted":
            if char == '"':
                quote.state = "quote"
        elif char == '"':  # state "quote": an escaped quote
            quote.state = "quoted"
        elif char == ",":
            quote.state, quote.field_no = "start", quote.field_no + 1
        elif char != "\r":
            return (number, _column(header, quote.field_no),
                    "text after the closing quote of a quoted field")
    if quote.state != "quoted":
        quote.state = "start"
    return None


# --- Parquet -------------------------------------------------------------------------


def _allowed(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        return _allowed(dtype.value_type)
    return (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
            or getattr(pa.types, "is_string_view", lambda _t: False)(dtype)
            or pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
            or pa.types.is_decimal(dtype) or pa.types.is_date(dtype)
            or pa.types.is_timestamp(dtype) or pa.types.is_null(dtype))


def _type_name(dtype: pa.DataType) -> str:
    for test, name in ((pa.types.is_list, "list"), (pa.types.is_large_list, "list"),
                       (pa.types.is_struct, "struct"), (pa.types.is_map, "map"),
                       (pa.types.is_binary, "binary"), (pa.types.is_large_binary, "binary"),
                       (pa.types.is_fixed_size_binary, "binary"),
                       (pa.types.is_boolean, "boolean")):
        if test(dtype):
            return name
    return shown(str(dtype))


@dataclass
class ParquetRead:
    """A Parquet table read after its footer passed the checks (or the problems)."""

    table: pa.Table | None
    problems: list[tuple[int, str, str]]


def read_parquet_checked(path: Path) -> ParquetRead:
    """Check types and column-chunk sizes from the footer, then read and check UTF-8."""
    try:
        pfile = pq.ParquetFile(path)
        schema = pfile.schema_arrow
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError…
        return ParquetRead(None, [(1, "(file)", "cannot be read as Parquet: "
                                   + shown(str(exc).splitlines()[0] if str(exc) else
                                           type(exc).__name__, 120))])
    problems: list[tuple[int, str, str]] = []
    names = list(schema.names)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append((1, shown(name), "column appears twice in the header"))
        seen.add(name)
    for fld in schema:
        if not _allowed(fld.type):
            problems.append((1, shown(fld.name), f"Parquet type {_type_name(fld.type)} is not "
                             "allowed (text, whole number, decimal number or date expected)"))
    if problems:
        return ParquetRead(None, problems)
    meta = pfile.metadata
    row = 0
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        for col in range(group.num_columns):
            size = group.column(col).total_uncompressed_size
            if size > group.num_rows * LINE_CAP + (1 << 20):
                problems.append((row + 2, shown(names[col]),
                                 f"rows {row + 2}–{row + group.num_rows + 1} hold values of "
                                 f"more than {LINE_CAP // 1024} KiB each on average "
                                 "(field too large)"))
        row += group.num_rows
    if problems:
        return ParquetRead(None, problems)
    try:
        table = pfile.read()
    except Exception as exc:  # corrupt pages
        return ParquetRead(None, [(1, "(file)", "cannot be read as Parquet: "
                                   + shown(str(exc).splitlines()[0] if str(exc) else
                                           type(exc).__name__, 120))])
    for name, column in zip(names, table.columns, strict=True):
        line = _invalid_utf8_line(column)
        if line is not None:
            problems.append((line, shown(name), "not valid UTF-8"))
    return ParquetRead(None if problems else table, problems)


def _invalid_utf8_line(column: pa.ChunkedArray) -> int | None:
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if not (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)):
        return None
    offset = 0
    for chunk in column.chunks:
        values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
        try:
            values.validate(full=True)
        except pa.ArrowInvalid as exc:
            match = re.search(r"index (\d+)", str(exc))
            index = int(match.group(1)) if match else 0
            if pa.types.is_dictionary(chunk.type):  # the row that uses the bad entry
                index = max(pc.index(chunk.indices, pa.scalar(index, chunk.indices.type))
                            .as_py(), 0)
            return offset + index + 2
        offset += len(chunk)
    return None
