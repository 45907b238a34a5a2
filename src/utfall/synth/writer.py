"""Write extract tables as CSV (UTF-8, comma, header, ISO dates) or Parquet, chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("csv", "parquet")


def write_table(
    out: Path, name: str, fmt: str, schema: pa.Schema, chunks: Iterable[pa.Table]
) -> int:
    """Write ``chunks`` (tables with ``schema``) to ``out/name.{fmt}``; return the row count.

    CSV values are never quoted (the generator emits no commas, quotes or newlines
    in values; pyarrow refuses to write a value that would need quoting), the
    header is a plain comma-separated line and nulls are empty fields.
    """
    path = out / f"{name}.{fmt}"
    rows = 0
    if fmt == "csv":
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        with path.open("wb") as sink:
            sink.write((",".join(schema.names) + "\n").encode("utf-8"))
            with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
                for chunk in chunks:
                    writer.write_table(chunk.cast(schema))
                    rows += chunk.num_rows
    elif fmt == "parquet":
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            wrote = False
            for chunk in chunks:
                writer.write_table(chunk.cast(schema))
                rows += chunk.num_rows
                wrote = True
            if not wrote:
                writer.write_table(schema.empty_table())
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
    return rows
