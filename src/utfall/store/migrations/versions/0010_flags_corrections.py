"""clinical flags, self-reports seen, assessment revisions and voids

Revision ID: 0010_flags_corrections
Revises: 0002_care
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_flags_corrections"
down_revision = "0002_care"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
KEY = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "care_flag",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("assessment_id", KEY, sa.ForeignKey("assessment.row_key"), nullable=False),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=True),
        sa.Column("instrument", sa.String(40), nullable=False),
        sa.Column("flag_id", sa.String(60), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("raised_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("closed_by", sa.String(100), nullable=True),
        sa.Column("closed_role", sa.String(40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("assessment_id", "flag_id", name="uq_care_flag"),
    )
    op.create_index("ix_care_flag_assessment_id", "care_flag", ["assessment_id"])
    op.create_index("ix_care_flag_person_key", "care_flag", ["person_key"])
    op.create_index("ix_care_flag_unit_id", "care_flag", ["unit_id"])
    op.create_index("ix_care_flag_status", "care_flag", ["status"])
    op.create_table(
        "care_self_report_seen",
        sa.Column("assessment_id", KEY, sa.ForeignKey("assessment.row_key"), primary_key=True),
        sa.Column("seen_by", sa.String(100), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("seen_at", TZ, nullable=False),
    )
    op.create_table(
        "care_assessment_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("assessment_id", KEY, sa.ForeignKey("assessment.row_key"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("subscores", sa.JSON(), nullable=True),
        sa.Column("band", sa.String(40), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=True),
        sa.Column("changed_at", TZ, nullable=False),
    )
    op.create_index("ix_care_assessment_revision_assessment_id", "care_assessment_revision",
                    ["assessment_id"])
    op.create_table(
        "care_assessment_void",
        sa.Column("assessment_id", KEY, sa.ForeignKey("assessment.row_key"), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("voided_by", sa.String(100), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("voided_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("care_assessment_void")
    op.drop_index("ix_care_assessment_revision_assessment_id", "care_assessment_revision")
    op.drop_table("care_assessment_revision")
    op.drop_table("care_self_report_seen")
    for name in ("status", "unit_id", "person_key", "assessment_id"):
        op.drop_index(f"ix_care_flag_{name}", "care_flag")
    op.drop_table("care_flag")
