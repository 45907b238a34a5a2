"""Structure measures: the region's training catalogue and staff training per unit.

* the catalogue is data (``content/training/courses.yaml``): courses with titles and the
  indicators they should move (``next_to``: ÅP beside DU119, MI/MET beside AU119);
* staff training records are imported from CSV (``utfall training import FILE.csv``) as
  one snapshot: the file replaces every record, in one transaction, and nothing is
  loaded when any line is wrong (errors as ``file:line: column: reason``);
* :func:`training_shares` gives, per unit and course, trained staff / staff.

CSV (UTF-8, comma or semicolon, header required)::

    unit_id,staff_ref,course_id,completed_on
    ber-malmo,S-0012,ap,2024-03-14
    ber-malmo,S-0013,,

``staff_ref`` is the region's pseudonymous staff reference (never a personal identity
number: values that look like one are refused); an empty ``course_id`` records a staff
member without any course (counted in the unit's staff).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

COLUMNS = ("unit_id", "staff_ref", "course_id", "completed_on")
_PNR_LIKE = re.compile(r"^(19|20)?\d{6}[-+]?\d{4}$")


@dataclass(frozen=True)
class Course:
    """One course of the training catalogue."""

    id: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    next_to: tuple[str, ...]


@cache
def load_courses() -> tuple[Course, ...]:
    """The training catalogue (``content/training/courses.yaml``)."""
    from utfall.content import load_yaml

    data = load_yaml("training/courses.yaml") or {}
    out = []
    for c in data.get("courses", []):
        out.append(Course(id=str(c["id"]), title=dict(c["title"]),
                          description=dict(c.get("description") or {}),
                          next_to=tuple(c.get("next_to") or ())))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ValueError("training/courses.yaml: a course id is used twice")
    return tuple(out)


class TrainingImportError(ValueError):
    """The CSV has errors (``errors``: ``file:line: column: reason``); nothing was loaded."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def read_training_csv(path: Path, units: set[str]) -> list[dict[str, Any]]:
    """Validated rows of a training CSV, or :class:`TrainingImportError` with every error."""
    courses = {c.id for c in load_courses()}
    errors: list[str] = []
    name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingImportError([f"{name}:1: -: cannot read the file ({exc})"]) from None
    lines = text.splitlines()
    if not lines:
        raise TrainingImportError([f"{name}:1: -: empty file (header {','.join(COLUMNS)})"])
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise TrainingImportError([f"{name}:1: {c}: column missing from the header"
                                   for c in missing])
    pos = {c: header.index(c) for c in COLUMNS}
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    today = dt.date.today()
    for lineno, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < len(header):
            errors.append(f"{name}:{lineno}: -: {len(cells)} fields, expected {len(header)}")
            continue
        v = {c: cells[pos[c]].strip() for c in COLUMNS}
        if not v["unit_id"]:
            errors.append(f"{name}:{lineno}: unit_id: empty")
        elif v["unit_id"] not in units:
            errors.append(f"{name}:{lineno}: unit_id: unknown unit {v['unit_id']!r}")
        if not v["staff_ref"]:
            errors.append(f"{name}:{lineno}: staff_ref: empty")
        elif len(v["staff_ref"]) > 64:
            errors.append(f"{name}:{lineno}: staff_ref: longer than 64 characters")
        elif _PNR_LIKE.match(v["staff_ref"].replace(" ", "")):
            errors.append(f"{name}:{lineno}: staff_ref: looks like a personal identity "
                          "number; use the region's pseudonymous staff reference")
        completed = None
        if v["course_id"] and v["course_id"] not in courses:
            errors.append(f"{name}:{lineno}: course_id: unknown course {v['course_id']!r} "
                          f"(known: {', '.join(sorted(courses))})")
        if v["completed_on"]:
            try:
                completed = dt.date.fromisoformat(v["completed_on"])
            except ValueError:
                errors.append(f"{name}:{lineno}: completed_on: not a date (YYYY-MM-DD): "
                              f"{v['completed_on']!r}")
            else:
                if completed > today:
                    errors.append(f"{name}:{lineno}: completed_on: in the future")
            if not v["course_id"]:
                errors.append(f"{name}:{lineno}: completed_on: given without a course_id")
        key = (v["unit_id"], v["staff_ref"], v["course_id"])
        if key in seen:
            errors.append(f"{name}:{lineno}: staff_ref: the same staff member and course "
                          "twice at the unit")
        seen.add(key)
        rows.append({"unit_id": v["unit_id"], "staff_ref": v["staff_ref"],
                     "course_id": v["course_id"] or None, "completed_on": completed})
    if errors:
        raise TrainingImportError(errors)
    return rows


def import_training(engine: Engine, path: Path) -> int:
    """Replace the training records with the CSV's (one transaction); returns the row
    count. Raises :class:`TrainingImportError` (nothing changed) on any error."""
    from utfall.store.models import Unit
    from utfall.store.models_training import TrainingRecord

    with engine.connect() as conn:
        units = set(conn.execute(select(Unit.unit_id)).scalars())
    rows = read_training_csv(path, units)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(delete(TrainingRecord))
        if rows:
            conn.execute(insert(TrainingRecord),
                         [{**r, "imported_at": now, "source": path.name} for r in rows])
    return len(rows)


def training_shares(conn: Connection) -> dict[str, dict[str, tuple[int, int]]]:
    """Per unit and course: (staff who completed it, staff at the unit)."""
    from utfall.store.models_training import TrainingRecord

    staff: dict[str, set[str]] = {}
    trained: dict[tuple[str, str], set[str]] = {}
    for unit, ref, course in conn.execute(select(TrainingRecord.unit_id,
                                                 TrainingRecord.staff_ref,
                                                 TrainingRecord.course_id)):
        staff.setdefault(unit, set()).add(ref)
        if course:
            trained.setdefault((unit, course), set()).add(ref)
    return {unit: {c.id: (len(trained.get((unit, c.id), ())), len(refs))
                   for c in load_courses()}
            for unit, refs in staff.items()}


def courses_next_to(indicator_id: str) -> list[Course]:
    """Courses placed beside an indicator (``next_to``)."""
    return [c for c in load_courses() if indicator_id in c.next_to]
