"""SQLAlchemy models of the operational store.

Personal data is keyed by ``person_key`` (keyed hash of the identity number);
the identity number itself is stored only encrypted (``person.pnr_encrypted``).
Tables filled by bulk imports carry a deterministic ``row_key`` (hash of the
natural key) so re-imports update instead of duplicating, portably across
SQLite and PostgreSQL (NULLs in unique constraints would not do that).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PERSON_KEY = String(64)


class Base(DeclarativeBase):
    """Declarative base of all store models."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}
    if TYPE_CHECKING:  # every store model is mapped to a Table (SQLAlchemy says FromClause)
        __table__: ClassVar[Table]


class Organisation(Base):
    """A principal: a region, a municipality or a private provider."""

    __tablename__ = "organisation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    principal_type: Mapped[str] = mapped_column(String(20))  # region / municipality / private


class Unit(Base):
    """A care or social-services unit of an organisation."""

    __tablename__ = "unit"
    unit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    care_level: Mapped[str] = mapped_column(String(40))
    municipality_code: Mapped[str | None] = mapped_column(String(4))


class Person(Base):
    """A person in care. The identity number is only stored encrypted."""

    __tablename__ = "person"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, unique=True)
    pnr_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    coordination_number: Mapped[bool] = mapped_column(Boolean, default=False)
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    municipality_code: Mapped[str | None] = mapped_column(String(4))
    death_date: Mapped[dt.date | None] = mapped_column(Date)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class Contact(Base):
    """A visit, stay or social-services contact with its diagnoses."""

    __tablename__ = "contact"
    # ``source:contact_id`` when the extract names its source system (0004_import_integrity)
    contact_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"))
    date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    contact_type: Mapped[str] = mapped_column(String(20))
    main_dx: Mapped[str | None] = mapped_column(String(10))
    dx_group: Mapped[str | None] = mapped_column(String(3))
    other_dx: Mapped[str | None] = mapped_column(Text)
    psych_groups: Mapped[str | None] = mapped_column(String(100))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))
    source: Mapped[str | None] = mapped_column(String(30))  # the extract's source system


class Procedure(Base):
    """A registered intervention (KVÅ code)."""

    __tablename__ = "procedure"
    row_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"))
    date: Mapped[dt.date] = mapped_column(Date)
    contact_id: Mapped[str | None] = mapped_column(String(100))
    kva_code: Mapped[str] = mapped_column(String(10))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))


class Medication(Base):
    """A medication period (ATC)."""

    __tablename__ = "medication"
    row_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"))
    atc: Mapped[str] = mapped_column(String(10))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))


class Enrolment(Base):
    """Enrolment of a person in a follow-up programme at a unit."""

    __tablename__ = "enrolment"
    row_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"), index=True)
    programme: Mapped[str] = mapped_column(String(40))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(40))
    phase: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))


class Assessment(Base):
    """An instrument administered at a stage: answers and scores."""

    __tablename__ = "assessment"
    row_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("person.person_key"), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("unit.unit_id"))
    instrument: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str | None] = mapped_column(String(40))
    date: Mapped[dt.date] = mapped_column(Date)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    subscores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    band: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20), default="import")  # import/capture/self_report
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))


class ImportBatch(Base):
    """One committed extract import (rejected imports leave no row)."""

    __tablename__ = "import_batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_name: Mapped[str] = mapped_column(String(400))
    content_hash: Mapped[str] = mapped_column(String(64))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    row_counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    warnings: Mapped[list[Any]] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(String(30))  # manifest.json "source"
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # new/changed per table


class AuditEvent(Base):
    """Append-only, hash-chained access log (HSLF-FS 2016:40)."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))
    unit_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))  # read/change/disclose/copy/create/print
    person_key: Mapped[str | None] = mapped_column(PERSON_KEY, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


Index("ix_procedure_contact", Procedure.contact_id)
