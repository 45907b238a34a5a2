"""care: follow-up service tables (phase history, stage owners, capture, self-report links)

Revision ID: 0002_care
Revises: 0001_foundation
Create Date: 2026-11-23 01:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_care"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "care_enrolment",
        sa.Column("enrolment_id", sa.String(length=40), nullable=False),
        sa.Column("responsible_worker", sa.String(length=100), nullable=True),
        sa.Column("municipal_unit_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["enrolment_id"], ["enrolment.row_key"]),
        sa.ForeignKeyConstraint(["municipal_unit_id"], ["unit.unit_id"]),
        sa.PrimaryKeyConstraint("enrolment_id"),
    )
    op.create_index("ix_care_enrolment_municipal_unit_id", "care_enrolment",
                    ["municipal_unit_id"])
    op.create_table(
        "care_phase_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.String(length=40), nullable=False),
        sa.Column("from_phase", sa.String(length=40), nullable=True),
        sa.Column("to_phase", sa.String(length=40), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["enrolment_id"], ["enrolment.row_key"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_care_phase_event_enrolment_id", "care_phase_event", ["enrolment_id"])
    op.create_table(
        "care_stage_owner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("responsible", sa.String(length=40), nullable=False),
        sa.Column("principal_type", sa.String(length=20), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("assigned_by", sa.String(length=100), nullable=False),
        sa.Column("assigned_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["enrolment_id"], ["enrolment.row_key"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.unit_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrolment_id", "stage", name="uq_care_stage_owner"),
    )
    op.create_index("ix_care_stage_owner_enrolment_id", "care_stage_owner", ["enrolment_id"])
    op.create_index("ix_care_stage_owner_unit_id", "care_stage_owner", ["unit_id"])
    op.create_table(
        "care_self_report_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("enrolment_id", sa.String(length=40), nullable=False),
        sa.Column("person_key", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("instruments", sa.JSON(), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("issued_by", sa.String(length=100), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["enrolment_id"], ["enrolment.row_key"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_care_self_report_token_enrolment_id", "care_self_report_token",
                    ["enrolment_id"])
    op.create_index("ix_care_self_report_token_person_key", "care_self_report_token",
                    ["person_key"])
    op.create_table(
        "care_assessment",
        sa.Column("assessment_id", sa.String(length=40), nullable=False),
        sa.Column("enrolment_id", sa.String(length=40), nullable=True),
        sa.Column("instrument_version", sa.String(length=20), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["assessment_id"], ["assessment.row_key"]),
        sa.ForeignKeyConstraint(["enrolment_id"], ["enrolment.row_key"]),
        sa.ForeignKeyConstraint(["token_id"], ["care_self_report_token.id"]),
        sa.PrimaryKeyConstraint("assessment_id"),
    )
    op.create_index("ix_care_assessment_enrolment_id", "care_assessment", ["enrolment_id"])


def downgrade() -> None:
    op.drop_table("care_assessment")
    op.drop_table("care_self_report_token")
    op.drop_table("care_stage_owner")
    op.drop_table("care_phase_event")
    op.drop_table("care_enrolment")
