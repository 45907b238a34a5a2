"""care relations as data and time-boxed emergency accesses

Revision ID: 0005_care_relation
Revises: 0003_access
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0005_care_relation"
down_revision = "0003_access"
branch_labels = None
depends_on = ("0002_care",)

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "care_relation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_key", sa.String(64), sa.ForeignKey("person.person_key"),
                  nullable=False),
        sa.Column("unit_id", sa.String(64), sa.ForeignKey("unit.unit_id"), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("basis", sa.String(30), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_unit_id", sa.String(64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("ended_by", sa.String(100), nullable=True),
        sa.Column("ended_at", TZ, nullable=True),
    )
    op.create_index("ix_care_relation_person_key", "care_relation", ["person_key"])
    op.create_index("ix_care_relation_unit", "care_relation", ["unit_id", "person_key"])
    op.create_table(
        "emergency_access",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_key", sa.String(64), sa.ForeignKey("person.person_key"),
                  nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("organisation_id", sa.Integer(), sa.ForeignKey("organisation.id"),
                  nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_emergency_access_person_key", "emergency_access", ["person_key"])
    op.create_index("ix_emergency_access_unit_id", "emergency_access", ["unit_id"])
    _backfill()


def _backfill() -> None:
    """Relations that earlier versions implied: units enrolling in Utfall, municipal
    units and stage owners named by those enrolments, units that registered a person."""
    conn = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    rows: set[tuple[str, str, dt.date, str]] = set()
    # .tuples() below is for typing only: the same result and rows at run time
    for key, unit, start, details in conn.execute(sa.text(
            "SELECT person_key, unit_id, start_date, details FROM enrolment")).tuples():
        info = json.loads(details) if isinstance(details, str) else (details or {})
        if (info or {}).get("source") == "capture":
            rows.add((key, unit, _as_date(start), "enrolment"))
    for key, unit, start in conn.execute(sa.text(
            "SELECT e.person_key, c.municipal_unit_id, e.start_date FROM enrolment e "
            "JOIN care_enrolment c ON c.enrolment_id = e.row_key "
            "WHERE c.municipal_unit_id IS NOT NULL")).tuples():
        rows.add((key, unit, _as_date(start), "assignment"))
    for key, unit, start in conn.execute(sa.text(
            "SELECT e.person_key, s.unit_id, e.start_date FROM enrolment e "
            "JOIN care_stage_owner s ON s.enrolment_id = e.row_key "
            "WHERE s.unit_id IS NOT NULL")).tuples():
        rows.add((key, unit, _as_date(start), "assignment"))
    for key, unit, at, detail in conn.execute(sa.text(
            "SELECT person_key, unit_id, at, detail FROM audit_event "
            "WHERE action = 'create' AND person_key IS NOT NULL AND unit_id IS NOT NULL")).tuples():
        info = json.loads(detail) if isinstance(detail, str) else (detail or {})
        if (info or {}).get("what") == "person":
            rows.add((key, unit, _as_date(at), "registration"))
    table = sa.table("care_relation", sa.column("person_key"), sa.column("unit_id"),
                     sa.column("valid_from"), sa.column("basis"), sa.column("note"),
                     sa.column("created_by"), sa.column("created_at"))
    units = {r[0] for r in conn.execute(sa.text("SELECT unit_id FROM unit"))}
    values = [{"person_key": k, "unit_id": u, "valid_from": d, "basis": b,
               "note": "migration 0005", "created_by": "migration", "created_at": now}
              for k, u, d, b in sorted(rows) if u in units]
    if values:
        op.bulk_insert(table, values)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def downgrade() -> None:
    op.drop_table("emergency_access")
    op.drop_table("care_relation")
