"""Row-by-row validation of an extract folder (format v1) and its transformation
into store-ready frames. Vectorised with Polars; no database access here.

Nothing is written: the result is either a :class:`ValidatedExtract` or an
:class:`ExtractRejected` carrying every error as ``file:line: column: reason``.
Identity numbers never appear in messages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from utfall.access.pseudonym import person_key
from utfall.domain.codes import (
    ATC_PATTERN,
    ICD10_PATTERN,
    KVA_PATTERN,
    code_systems,
    normalise_icd10,
)
from utfall.domain.identity import IdentityNumberError, parse_identity_number
from utfall.instruments import (
    InstrumentRegistry,
    InvalidAnswersError,
    default_registry,
    score,
    validate_answers,
)
from utfall.interop import extract_spec as spec
from utfall.interop.extract_read import LINE, Problem, RawTable, read_table
from utfall.interop.extract_scan import shown, shown_expr

DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
PROCEDURE_KEY = ["person_key", "unit_id", "date", "contact_id", "kva_code"]
MUNICIPALITY_RE = r"^\d{4}$"


class ExtractRejected(Exception):
    """The folder was rejected; ``errors`` lists every problem found."""

    def __init__(self, errors: list[Problem], warnings: list[Problem]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors
        self.warnings = warnings


@dataclass
class ValidatedExtract:
    """Store-ready frames of a valid extract, with warnings and provenance."""

    folder: Path
    frames: dict[str, pl.DataFrame]
    warnings: list[Problem] = field(default_factory=list)
    synthetic: bool = False
    content_hash: str = ""
    source: str | None = None  # the system the extract comes from; scopes contact_id
    files: dict[str, str] = field(default_factory=dict)  # table -> file name as read

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: frame.height for name, frame in self.frames.items()}


class _Collector:
    """Collects error/warning frames (line, column, reason) per file."""

    def __init__(self) -> None:
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, file: str, frame: pl.DataFrame, *, warning: bool = False) -> None:
        if frame.height == 0:
            return
        target = self.warnings if warning else self.errors
        for line, column, reason in frame.select(LINE, "column", "reason").iter_rows():
            target.append(Problem(file, int(line), column, reason))

    def fail(self, file: str, df: pl.DataFrame, mask: pl.Expr, column: str,
             reason: pl.Expr | str, *, warning: bool = False) -> None:
        reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
        hits = df.filter(mask).select(
            pl.col(LINE), pl.lit(column).alias("column"), reason_expr.alias("reason"))
        self.add(file, hits, warning=warning)


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Stockholm")).date()


def validate_extract(folder: Path, secret_key: bytes, *, today: dt.date | None = None,
                     programmes: tuple[str, ...] | None = None,
                     instruments: InstrumentRegistry | None = None,
                     source: str | None = None) -> ValidatedExtract:
    """Validate every row of the extract in ``folder`` and build store-ready frames.

    ``source`` names the system the extract comes from when its ``manifest.json``
    does not. Raises :class:`ExtractRejected` with all errors if anything is wrong.
    """
    today = today or _today()
    out = _Collector()
    folder = Path(folder)
    if not folder.is_dir():
        raise ExtractRejected([Problem(shown(folder, 200), 1, "(folder)", "no such folder")], [])
    manifest = _read_manifest(folder, out)
    source = _source(manifest, source, out)
    known_files = {f"{n}.{ext}" for n in spec.ORDER for ext in ("csv", "parquet")}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in known_files and path.name != spec.MANIFEST \
                and path.suffix.lower() in {".csv", ".parquet"}:
            out.errors.append(Problem(shown(path.name, 100), 1, "(file)",
                                      "not a table of extract format v1"))
    raw: dict[str, RawTable] = {}
    broken: set[str] = set()  # present but unusable: skip references into them
    for name in spec.ORDER:
        table = read_table(folder, name)
        if table is None:
            if name in spec.REQUIRED_FILES:
                out.errors.append(Problem(f"{name}.csv", 1, "(file)", "required file is missing"))
            continue
        out.errors.extend(table.problems)
        if table.frame is not None and _check_header(table, out):
            raw[name] = table
        else:
            broken.add(name)

    progs = programmes or spec.DEFAULT_PROGRAMMES
    frames: dict[str, pl.DataFrame] = {}
    units = _units(raw.get("units"), out, today)
    persons = _persons(raw.get("persons"), out, secret_key, today)
    unit_ids = units["unit_id"] if units is not None else pl.Series("unit_id", [], pl.String)
    ctx = _Context(out, today, unit_ids, persons, secret_key, broken)
    if units is not None:
        frames["units"] = units
    if persons is not None:
        frames["persons"] = persons.drop("_raw", "_birth")
    # Assessments (per-row scoring in Python) run in a worker thread while the other
    # tables are validated: Polars releases the GIL, so the two overlap on 2+ cores.
    with ThreadPoolExecutor(max_workers=1) as pool:
        scored = pool.submit(_assessments, raw["assessments"], ctx,
                             instruments or default_registry()) if "assessments" in raw else None
        if "contacts" in raw:
            frames["contacts"] = _contacts(raw["contacts"], ctx)
        if "procedures" in raw:
            frames["procedures"] = _procedures(raw["procedures"], ctx, frames.get("contacts"))
        if "medications" in raw:
            frames["medications"] = _medications(raw["medications"], ctx)
        if "enrolments" in raw:
            frames["enrolments"] = _enrolments(raw["enrolments"], ctx, progs)
        if scored is not None:
            frames["assessments"] = scored.result()

    order = {f"{n}.{e}": i for i, n in enumerate(spec.ORDER) for e in ("csv", "parquet")}
    out.errors.sort(key=lambda p: (order.get(p.file, -1), p.file, p.line, p.column))
    out.warnings.sort(key=lambda p: (order.get(p.file, -1), p.file, p.line, p.column))
    if out.errors:
        raise ExtractRejected(out.errors, out.warnings)
    if source:
        frames = _scope_contact_ids(frames, source)
    return ValidatedExtract(folder, frames, out.warnings, bool(manifest.get("synthetic")),
                            _content_hash(folder), source,
                            {name: table.file for name, table in raw.items()})


def scoped_contact_id(source: str | None, contact_id: str) -> str:
    """The stored ``contact_id``: ``source:contact_id`` for an extract with a source."""
    return f"{source}:{contact_id}" if source else contact_id


def _scope_contact_ids(frames: dict[str, pl.DataFrame], source: str) -> dict[str, pl.DataFrame]:
    """``contact_id`` → ``source:contact_id`` in contacts and procedures (whose row key,
    which includes the contact, is recomputed: two systems' procedures never merge)."""
    scoped = pl.lit(source + ":") + pl.col("contact_id")
    frames = dict(frames)
    if "contacts" in frames:
        frames["contacts"] = frames["contacts"].with_columns(scoped.alias("contact_id"))
    if "procedures" in frames:
        procedures = frames["procedures"].with_columns(scoped.alias("contact_id"))
        frames["procedures"] = _row_keys(procedures.drop("row_key"), PROCEDURE_KEY).select(
            frames["procedures"].columns)
    return frames


def _read_manifest(folder: Path, out: _Collector) -> dict:
    path = folder / spec.MANIFEST
    if not path.exists():
        return {}
    try:
        if not path.is_file():
            raise ValueError("not a file")
        if path.stat().st_size > spec.MANIFEST_CAP:
            out.errors.append(Problem(spec.MANIFEST, 1, "(file)",
                                      f"larger than {spec.MANIFEST_CAP // 1024} KiB"))
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        out.errors.append(Problem(spec.MANIFEST, 1, "(file)", "not valid UTF-8"))
        return {}
    except Exception as exc:  # ValueError, RecursionError (deep nesting), OSError
        out.errors.append(Problem(spec.MANIFEST, 1, "(file)",
                                  f"not valid JSON: {shown(exc, 80)}"))
        return {}
    if not isinstance(data, dict):
        out.errors.append(Problem(spec.MANIFEST, 1, "(file)", "must be a JSON object"))
        return {}
    return data


def _source(manifest: dict, given: str | None, out: _Collector) -> str | None:
    """The extract's source system (manifest ``source`` or ``--source``), checked."""
    value = manifest.get("source")
    if value is not None and given is not None and value != given:
        out.errors.append(Problem(spec.MANIFEST, 1, "source",
                                  f"'{shown(value)}' differs from the source given on the "
                                  f"command line ('{shown(given)}')"))
        return None
    value = value if value is not None else given
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > spec.SOURCE_MAX \
            or not spec.SOURCE_RE.match(value):
        out.errors.append(Problem(spec.MANIFEST, 1, "source",
                                  f"'{shown(value)}' is not a source name (1–{spec.SOURCE_MAX} "
                                  "letters A–Z, digits, '.', '_' or '-', starting with a letter "
                                  "or digit)"))
        return None
    return value


def _content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _check_header(table: RawTable, out: _Collector) -> bool:
    columns = spec.TABLES[table.name]
    known = {c.name for c in columns}
    ok = True
    seen: set[str] = set()
    unknown: list[str] = []
    for name in table.header:
        if name in seen:
            out.errors.append(Problem(table.file, 1, shown(name),
                                      "column appears twice in the header"))
            ok = False
        seen.add(name)
        is_item = table.name == "assessments" and bool(spec.ITEM_RE.match(name))
        if name not in known and not is_item:
            out.errors.append(Problem(table.file, 1, shown(name) or "(empty)",
                                      "unknown column (not in extract format v1)"))
            unknown.append(name)
    for col in columns:
        if col.name not in seen and (col.required or col.kind.startswith("ref_")) \
                and col.kind != "ref_contact":
            out.errors.append(Problem(table.file, 1, col.name, "required column is missing"))
            ok = False
    if ok and unknown and table.frame is not None:
        table.frame = table.frame.drop([u for u in unknown if u in table.frame.columns])
    return ok


def _col(df: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in df.columns else pl.lit(None, pl.String).alias(name)


def _ensure(df: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    missing = [pl.lit(None, pl.String).alias(n) for n in names if n not in df.columns]
    return df.with_columns(missing) if missing else df


def _basic_checks(table: RawTable, out: _Collector, today: dt.date,
                  enums: dict[str, tuple[str, ...]] | None = None) -> pl.DataFrame:
    """Required, enum, date and code-format rules of single columns.

    ``enums`` overrides the allowed values of enum columns (e.g. configured programmes).
    """
    df = _ensure(table.frame, [c.name for c in spec.TABLES[table.name]])  # type: ignore[arg-type]
    file = table.file
    for col in spec.TABLES[table.name]:
        if col.required and col.kind not in {"ref_contact"}:
            out.fail(file, df, pl.col(col.name).is_null(), col.name, "required value is missing")
    df = _check_characters(table, df, out)
    for col in spec.TABLES[table.name]:
        if enums and col.name in enums:
            col = spec.Column(col.name, col.kind, col.required, enums[col.name])
        c = pl.col(col.name)
        present = c.is_not_null()
        if col.kind == "enum":
            out.fail(file, df, present & ~c.is_in(list(col.values)), col.name,
                     pl.format("'{}' is not one of: " + ", ".join(col.values), shown_expr(c)))
        elif col.kind == "date":
            parsed = c.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
            bad = present & (~c.str.contains(DATE_RE) | parsed.is_null())
            out.fail(file, df, bad, col.name,
                     pl.format("'{}' is not a date in the form YYYY-MM-DD", shown_expr(c)))
            out.fail(file, df, ~bad & present & (parsed > pl.lit(today)), col.name,
                     pl.format("{} is in the future", shown_expr(c)))
            df = df.with_columns(parsed.alias(col.name))
        elif col.kind == "municipality":
            out.fail(file, df, present & ~c.str.contains(MUNICIPALITY_RE), col.name,
                     pl.format("'{}' is not a 4-digit municipality code", shown_expr(c)))
        elif col.kind == "kva":
            up = c.str.to_uppercase()
            out.fail(file, df, present & ~up.str.contains(KVA_PATTERN.pattern), col.name,
                     pl.format("'{}' is not a well-formed KVÅ code", shown_expr(c)))
            df = df.with_columns(up.alias(col.name))
        elif col.kind == "atc":
            up = c.str.to_uppercase()
            out.fail(file, df, present & ~up.str.contains(ATC_PATTERN.pattern), col.name,
                     pl.format("'{}' is not a well-formed ATC code", shown_expr(c)))
            df = df.with_columns(up.alias(col.name))
        elif col.kind == "icd10":
            norm = c.str.to_uppercase().str.replace_all(".", "", literal=True)
            out.fail(file, df, present & ~norm.str.contains(ICD10_PATTERN.pattern), col.name,
                     pl.format("'{}' is not a well-formed ICD-10-SE code", shown_expr(c)))
            df = df.with_columns(norm.alias(col.name))
    return df


def _check_characters(table: RawTable, df: pl.DataFrame, out: _Collector) -> pl.DataFrame:
    """Maximum length and allowed characters of every column (the same for every store).

    A value that breaks them is reported once and then treated as absent, so no later
    rule repeats it; the folder is rejected anyway. One parallel pass finds the columns
    with any such value; only those are looked at again.
    """
    specs = {c.name: c for c in spec.TABLES[table.name]}
    rules: dict[str, tuple[spec.Column, pl.Expr, pl.Expr]] = {}
    for name in df.columns:
        if name == LINE:
            continue
        col = specs.get(name, spec.ITEM_COLUMN)
        c = pl.col(name)
        too_long = c.is_not_null() & (c.str.len_chars() > col.max_len)
        forbidden = spec.FORBIDDEN_IN_FREE_TEXT if col.free_text else spec.FORBIDDEN_CHARS
        bad_char = c.is_not_null() & ~too_long & c.str.contains(forbidden)
        rules[name] = (col, too_long, bad_char)
    if not rules or df.height == 0:
        return df
    hits = df.select([(too_long | bad_char).any().alias(name)
                      for name, (_col, too_long, bad_char) in rules.items()]).row(0)
    nulled = []
    for (name, (col, too_long, bad_char)), hit in zip(rules.items(), hits, strict=True):
        if not hit:
            continue
        out.fail(table.file, df, too_long, name,
                 pl.format(f"longer than {col.max_len} characters ({{}})",
                           pl.col(name).str.len_chars()))
        forbidden = spec.FORBIDDEN_IN_FREE_TEXT if col.free_text else spec.FORBIDDEN_CHARS
        bad = df.filter(bad_char)
        if bad.height:
            reasons = [f"contains the control character U+{ord(ch):04X}, not allowed here"
                       for ch in bad[name].str.extract(f"({forbidden})", 1).to_list()]
            out.add(table.file, bad.select(LINE, pl.lit(name).alias("column"),
                                           pl.Series("reason", reasons, pl.String)))
        nulled.append(pl.when(too_long | bad_char).then(None).otherwise(pl.col(name))
                      .alias(name))
    return df.with_columns(nulled) if nulled else df


def _duplicates(df: pl.DataFrame, key: str, what: str) -> pl.DataFrame:
    first = df.group_by(key).agg(pl.col(LINE).min().alias("_first"))
    dup = df.join(first, on=key).filter(pl.col(LINE) != pl.col("_first"))
    return dup.select(
        pl.col(LINE), pl.lit(key).alias("column"),
        pl.format(what + " (first on line {})", pl.col("_first")).alias("reason"))


def _units(table: RawTable | None, out: _Collector, today: dt.date) -> pl.DataFrame | None:
    if table is None:
        return None
    df = _basic_checks(table, out, today)
    ids = df.filter(pl.col("unit_id").is_not_null())
    out.add(table.file, _duplicates(
        ids, "unit_id", "duplicate unit_id"))
    orgs = df.filter(pl.col("organisation").is_not_null() & pl.col("principal_type").is_not_null())
    first = orgs.sort(LINE).group_by("organisation", maintain_order=True).agg(
        pl.col("principal_type").first().alias("_pt"), pl.col(LINE).first().alias("_first"))
    clash = orgs.join(first, on="organisation").filter(pl.col("principal_type") != pl.col("_pt"))
    out.fail(table.file, clash, pl.lit(True), "principal_type",
             pl.format("organisation '{}' is '{}' on line {}", shown_expr(pl.col("organisation")),
                       pl.col("_pt"), pl.col("_first")))
    return df.select("unit_id", "name", "organisation", "principal_type", "care_level",
                     "municipality_code", LINE)


def _persons(table: RawTable | None, out: _Collector, secret: bytes,
             today: dt.date) -> pl.DataFrame | None:
    if table is None:
        return None
    df = _basic_checks(table, out, today)
    parsed: dict[str, tuple] = {}
    for raw in df["person_id"].drop_nulls().unique().to_list():
        try:
            ident = parse_identity_number(raw, today)
            parsed[raw] = (ident.canonical, ident.birth_date, ident.sex, ident.coordination, None)
        except IdentityNumberError as exc:
            parsed[raw] = (None, None, None, None, str(exc))
    lookup = pl.DataFrame(
        {
            "person_id": list(parsed),
            "_canonical": [v[0] for v in parsed.values()],
            "_birth": [v[1] for v in parsed.values()],
            "_sex": [v[2] for v in parsed.values()],
            "coordination_number": [v[3] for v in parsed.values()],
            "_error": [v[4] for v in parsed.values()],
        },
        schema={"person_id": pl.String, "_canonical": pl.String, "_birth": pl.Date,
                "_sex": pl.String, "coordination_number": pl.Boolean, "_error": pl.String},
    )
    df = df.join(lookup, on="person_id", how="left")
    out.fail(table.file, df, pl.col("_error").is_not_null(), "person_id",
             pl.format("not a valid identity number: {}", pl.col("_error")))
    valid = df.filter(pl.col("_canonical").is_not_null())
    out.add(table.file, _duplicates(valid, "_canonical", "the same person appears twice")
            .with_columns(pl.lit("person_id").alias("column")))
    out.fail(table.file, valid, pl.col("sex").is_not_null() & (pl.col("sex") != pl.col("_sex")),
             "sex", pl.format("'{}' does not match the identity number's sex digit",
                              shown_expr(pl.col("sex"))), warning=True)
    out.fail(table.file, valid, pl.col("death_date") < pl.col("_birth"), "death_date",
             "before the date of birth")
    keys = {c: person_key(c, secret) for c in valid["_canonical"].unique().to_list()}
    valid = valid.unique("_canonical", keep="first").with_columns(
        pl.col("_canonical").replace_strict(keys, return_dtype=pl.String).alias("person_key"))
    return valid.select(
        pl.col("person_id").alias("_raw"), "person_key", pl.col("_canonical").alias("canonical"),
        "coordination_number", "sex", pl.col("_birth").alias("birth_date"),
        pl.col("_birth"), "municipality_code", "death_date", LINE)


@dataclass
class _Context:
    out: _Collector
    today: dt.date
    unit_ids: pl.Series
    persons: pl.DataFrame | None
    secret: bytes
    broken: set[str]
    _extra: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def resolve_persons(self, table: RawTable, df: pl.DataFrame) -> pl.DataFrame:
        """Attach person_key and birth date; report unknown or invalid person_id/unit_id."""
        file = table.file
        persons = self.persons if self.persons is not None else pl.DataFrame(
            schema={"_raw": pl.String, "person_key": pl.String, "canonical": pl.String,
                    "_birth": pl.Date, "death_date": pl.Date})
        by_raw = persons.select(pl.col("_raw").alias("person_id"), "person_key", "_birth",
                                pl.col("death_date").alias("_death"))
        df = df.join(by_raw, on="person_id", how="left")
        unmatched = df.filter(pl.col("person_key").is_null() & pl.col("person_id").is_not_null())
        if unmatched.height:
            by_canonical = dict(zip(persons["canonical"].to_list(),
                                    persons["person_key"].to_list(), strict=True))
            fixes: dict[str, tuple[str | None, str | None]] = {}
            for raw in unmatched["person_id"].unique().to_list():
                if raw not in self._extra:
                    try:
                        canonical = parse_identity_number(raw, self.today).canonical
                        key = by_canonical.get(canonical)
                        self._extra[raw] = (key, None if key else "no such person in persons")
                    except IdentityNumberError as exc:
                        self._extra[raw] = (None, f"not a valid identity number: {exc}")
                fixes[raw] = self._extra[raw]
            fix = pl.DataFrame({"person_id": list(fixes),
                                "_key2": [v[0] for v in fixes.values()],
                                "_perr": [v[1] for v in fixes.values()]},
                               schema={"person_id": pl.String, "_key2": pl.String,
                                       "_perr": pl.String})
            df = df.join(fix, on="person_id", how="left")
            out_err = df.filter(pl.col("_perr").is_not_null())
            if "persons" not in self.broken:
                self.out.fail(file, out_err, pl.lit(True), "person_id", pl.col("_perr"))
            extra = persons.select(pl.col("person_key").alias("_key2"),
                                   pl.col("_birth").alias("_b2"),
                                   pl.col("death_date").alias("_d2"))
            df = df.join(extra, on="_key2", how="left").with_columns(
                pl.coalesce("person_key", "_key2").alias("person_key"),
                pl.coalesce("_birth", "_b2").alias("_birth"),
                pl.coalesce("_death", "_d2").alias("_death"),
            ).drop("_key2", "_perr", "_b2", "_d2")
        self.out.fail(file, df, pl.lit("units" not in self.broken) & pl.col("unit_id").is_not_null()
                      & ~pl.col("unit_id").is_in(self.unit_ids.implode()),
                      "unit_id", pl.format("no unit '{}' in units", shown_expr(pl.col("unit_id"))))
        return df

    def dated(self, table: RawTable, df: pl.DataFrame, start: str, end: str | None) -> None:
        """Birth, death and end ≥ start rules shared by dated tables."""
        file = table.file
        self.out.fail(file, df, pl.col(start) < pl.col("_birth"), start,
                      "before the person's date of birth")
        self.out.fail(file, df, pl.col(start) > pl.col("_death"), start,
                      "after the person's date of death", warning=True)
        if end:
            self.out.fail(file, df, pl.col(end) < pl.col(start), end,
                          f"before {start}")


def _row_keys(df: pl.DataFrame, parts: list[str]) -> pl.DataFrame:
    """Deterministic row key: md5 of the natural key (stable across versions)."""
    natural = df.select(pl.concat_str(
        [pl.col(p).cast(pl.String).fill_null("") for p in parts], separator="|").alias("k"))
    con = duckdb.connect()
    try:
        con.register("natural_keys", natural.to_arrow())
        keys = con.sql("select md5(k) as row_key from natural_keys").to_arrow_table()
    finally:
        con.close()
    return df.with_columns(pl.Series("row_key", keys.column("row_key")))


def _contacts(table: RawTable, ctx: _Context) -> pl.DataFrame:
    df = _basic_checks(table, ctx.out, ctx.today)
    out, file = ctx.out, table.file
    out.add(file, _duplicates(df.filter(pl.col("contact_id").is_not_null()), "contact_id",
                              "duplicate contact_id"))
    out.fail(file, df, pl.col("main_dx").is_null() & pl.col("contact_type").is_not_null()
             & (pl.col("contact_type") != "social_services"), "main_dx",
             "required value is missing (optional only for social_services contacts)")
    df = ctx.resolve_persons(table, df)
    ctx.dated(table, df, "date", "end_date")
    # other_dx: ';'-separated codes, normalised; psychiatric groups from main + other
    codes = code_systems()
    combos: dict[str, tuple[str | None, str | None, str | None]] = {}
    pairs = df.select("main_dx", "other_dx").unique()
    for main, other in pairs.iter_rows():
        key = f"{main}\x00{other}"
        parts = [normalise_icd10(p) for p in (other or "").split(";") if p.strip()]
        bad = [p for p in parts if not ICD10_PATTERN.match(p)]
        groups = []
        for code in ([main] if main else []) + parts:
            g = codes.psychiatric_group(code)
            if g and g not in groups:
                groups.append(g)
        combos[key] = (";".join(parts) or None, ";".join(sorted(groups)) or None,
                       ", ".join(f"'{shown(b)}'" for b in bad) or None)
    combo = pl.DataFrame({"_combo": list(combos),
                          "_other": [v[0] for v in combos.values()],
                          "psych_groups": [v[1] for v in combos.values()],
                          "_bad": [v[2] for v in combos.values()]},
                         schema={"_combo": pl.String, "_other": pl.String,
                                 "psych_groups": pl.String, "_bad": pl.String})
    # the same key as the Python f-string above (None → "None")
    df = df.with_columns(pl.concat_str(
        [pl.col("main_dx").cast(pl.String).fill_null("None"),
         pl.col("other_dx").fill_null("None")], separator="\x00").alias("_combo"))
    df = df.join(combo, on="_combo", how="left")
    out.fail(file, df, pl.col("_bad").is_not_null(), "other_dx",
             pl.format("not well-formed ICD-10-SE code(s): {}", pl.col("_bad")))
    dx_group = pl.when(pl.col("main_dx").str.contains(r"^F1\d")).then(
        pl.col("main_dx").str.slice(0, 3)).otherwise(None)
    return df.select(
        "contact_id", "person_key", "unit_id", "date", "end_date", "contact_type", "main_dx",
        dx_group.alias("dx_group"), pl.col("_other").alias("other_dx"), "psych_groups", LINE)


def _procedures(table: RawTable, ctx: _Context, contacts: pl.DataFrame | None) -> pl.DataFrame:
    df = _basic_checks(table, ctx.out, ctx.today)
    out, file = ctx.out, table.file
    df = ctx.resolve_persons(table, df)
    ctx.dated(table, df, "date", None)
    if contacts is not None:
        link = contacts.select("contact_id", pl.col("person_key").alias("_cpk"))
        df = df.join(link, on="contact_id", how="left")
    else:
        df = df.with_columns(pl.lit(None, pl.String).alias("_cpk"))
    linked = pl.col("contact_id").is_not_null()
    out.fail(file, df, linked & pl.col("_cpk").is_null() & pl.lit("contacts" not in ctx.broken),
             "contact_id",
             pl.format("no contact '{}' in contacts", shown_expr(pl.col("contact_id"))))
    out.fail(file, df, linked & pl.col("_cpk").is_not_null() & pl.col("person_key").is_not_null()
             & (pl.col("_cpk") != pl.col("person_key")), "contact_id",
             pl.format("contact '{}' belongs to another person", shown_expr(pl.col("contact_id"))))
    _unknown_codes(df, "kva_code", set(code_systems().kva), "KVÅ", file, out)
    df = df.unique(PROCEDURE_KEY, keep="first", maintain_order=True)
    df = _row_keys(df, PROCEDURE_KEY)
    return df.select("row_key", "person_key", "unit_id", "date", "contact_id", "kva_code", LINE)


def _unknown_codes(df: pl.DataFrame, column: str, known: set[str], system: str, file: str,
                   out: _Collector) -> None:
    """One warning per unknown (but well-formed) code, on its first line, with a count."""
    unknown = df.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(sorted(known)))
    if unknown.height == 0:
        return
    summary = unknown.group_by(column).agg(pl.col(LINE).min(), pl.len().alias("n"))
    out.add(file, summary.select(
        LINE, pl.lit(column).alias("column"),
        pl.format(f"unknown {system} code '{{}}' kept as registered, not classified "
                  "({} row(s))", shown_expr(pl.col(column)), pl.col("n")).alias("reason")),
            warning=True)


def _medications(table: RawTable, ctx: _Context) -> pl.DataFrame:
    df = _basic_checks(table, ctx.out, ctx.today)
    df = ctx.resolve_persons(table, df)
    ctx.dated(table, df, "start_date", "end_date")
    _unknown_codes(df, "atc", set(code_systems().atc), "ATC", table.file, ctx.out)
    df = _row_keys(df, ["person_key", "unit_id", "atc", "start_date"])
    _same_key_twice(table, df, ctx.out)
    return df.select("row_key", "person_key", "unit_id", "atc", "start_date", "end_date", LINE)


def _same_key_twice(table: RawTable, df: pl.DataFrame, out: _Collector) -> None:
    dup = _duplicates(df.filter(pl.col("person_key").is_not_null()), "row_key",
                      "the same row appears twice")
    out.add(table.file, dup.with_columns(pl.lit("(row)").alias("column")))


def _enrolments(table: RawTable, ctx: _Context, programmes: tuple[str, ...]) -> pl.DataFrame:
    df = _basic_checks(table, ctx.out, ctx.today, {"programme": tuple(programmes)})
    df = ctx.resolve_persons(table, df)
    ctx.dated(table, df, "start_date", "end_date")
    ctx.out.fail(table.file, df, pl.col("end_reason").is_not_null() & pl.col("end_date").is_null(),
                 "end_reason", "given without an end_date")
    df = _row_keys(df, ["person_key", "unit_id", "programme", "start_date"])
    _same_key_twice(table, df, ctx.out)
    phase = pl.when(pl.col("end_date").is_not_null()).then(pl.lit("ending")).otherwise(None)
    return df.select("row_key", "person_key", "unit_id", "programme", "start_date", "end_date",
                     "end_reason", phase.alias("phase"), LINE)


def _assessments(table: RawTable, ctx: _Context, registry: InstrumentRegistry) -> pl.DataFrame:
    df = _basic_checks(table, ctx.out, ctx.today)
    out, file = ctx.out, table.file
    df = ctx.resolve_persons(table, df)
    ctx.dated(table, df, "date", None)
    items = sorted((c for c in df.columns if spec.ITEM_RE.match(c)),
                   key=lambda c: int(c[len(spec.ITEM_PREFIX):]))
    for item in items:
        as_int = pl.col(item).cast(pl.Int64, strict=False)
        out.fail(file, df, pl.col(item).is_not_null() & as_int.is_null(), item,
                 pl.format("'{}' is not a whole number", shown_expr(pl.col(item))))
    df = df.with_columns([pl.col(i).cast(pl.Int64, strict=False) for i in items])
    out.fail(file, df, pl.col("instrument").is_not_null()
             & ~pl.col("instrument").is_in(registry.ids()), "instrument",
             pl.format("unknown instrument '{}' (known: " + ", ".join(registry.ids()) + ")",
                       shown_expr(pl.col("instrument"))))
    df = _score_assessments(df, items, ctx, registry, file)
    answers = pl.struct(items).struct.json_encode() if items else pl.lit("{}")
    df = df.with_columns(answers.alias("answers"))
    df = _row_keys(df, ["person_key", "unit_id", "instrument", "stage", "date"])
    _same_key_twice(table, df, out)
    return df.select("row_key", "person_key", "unit_id", "instrument", "stage", "date",
                     "answers", "score", "subscores", "band", LINE)


def _score_assessments(df: pl.DataFrame, items: list[str], ctx: _Context,
                       registry: InstrumentRegistry, file: str) -> pl.DataFrame:
    """Validate answers and score each row with the generic instrument engine.

    Sex and age (at the assessment date) come from the person, for sex- and
    age-dependent bands. Identical inputs are scored once.
    """
    persons = ctx.persons
    valid_sex = pl.when(pl.col("sex").is_in(spec.SEXES)).then(pl.col("sex"))  # else null
    sex = persons.select("person_key", valid_sex.alias("_sex")) if persons is not None \
        else pl.DataFrame(schema={"person_key": pl.String, "_sex": pl.String})
    df = df.join(sex, on="person_key", how="left")
    age = (pl.col("date").dt.year() - pl.col("_birth").dt.year()
           - ((pl.col("date").dt.month() * 100 + pl.col("date").dt.day())
              < (pl.col("_birth").dt.month() * 100 + pl.col("_birth").dt.day())).cast(pl.Int32))
    df = df.with_columns(age.alias("_age"))
    known = set(registry.ids())
    cache: dict[tuple, tuple[float | None, str | None, str | None, list[tuple[str, str]]]] = {}
    scores: list[float | None] = []
    subscores: list[str | None] = []
    bands: list[str | None] = []
    for row in df.select(LINE, "instrument", "_sex", "_age", *items).iter_rows():
        line, instrument, person_sex, person_age, *values = row
        if instrument not in known:
            scores.append(None)
            subscores.append(None)
            bands.append(None)
            continue
        key = (instrument, person_sex, person_age, *values)
        if key not in cache:
            definition = registry.get(instrument)
            answers = {i: v for i, v in zip(items, values, strict=True) if v is not None}
            try:
                result = score(definition, answers, sex=person_sex, age=person_age)
            except InvalidAnswersError:
                result = None
            # complete, valid answers need no second pass; otherwise list the problems
            problems = [] if result is not None and not result.missing else [
                (p.link_id or "instrument", p.en)
                for p in validate_answers(definition, answers) if p.severity == "error"]
            if problems or result is None:
                cache[key] = (None, None, None, problems)
            else:
                total = None if result.total is None else float(result.total)
                cache[key] = (total, json.dumps(result.subscales, sort_keys=True), result.band, [])
        total, sub, band, problems = cache[key]
        for column, reason in problems:
            ctx.out.errors.append(Problem(file, int(line), column, reason))
        scores.append(total)
        subscores.append(sub)
        bands.append(band)
    return df.with_columns(pl.Series("score", scores, pl.Float64),
                           pl.Series("subscores", subscores, pl.String),
                           pl.Series("band", bands, pl.String)).drop("_sex", "_age")
