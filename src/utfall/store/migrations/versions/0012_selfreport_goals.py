"""self-report drafts, own goals and reviews, own-view links

Revision ID: 0012_selfreport_goals
Revises: 0002_care
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_selfreport_goals"
down_revision = "0002_care"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "care_self_report_draft",
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("care_self_report_token.id"),
                  primary_key=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "care_goal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("enrolment_id", sa.String(40)),
        sa.Column("domain", sa.String(40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_index("ix_care_goal_person_key", "care_goal", ["person_key"])
    op.create_table(
        "care_goal_review",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("goal_id", sa.Integer(), sa.ForeignKey("care_goal.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(40)),
        sa.Column("note", sa.Text()),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("reviewed_by", sa.String(100), nullable=False),
        sa.Column("reviewed_at", TZ, nullable=False),
    )
    op.create_index("ix_care_goal_review_goal_id", "care_goal_review", ["goal_id"])
    op.create_table(
        "care_own_view_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("issued_by", sa.String(100), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
        sa.Column("revoked_by", sa.String(100)),
    )
    op.create_index("ix_care_own_view_link_person_key", "care_own_view_link", ["person_key"])


def downgrade() -> None:
    for table in ("care_own_view_link", "care_goal_review", "care_goal",
                  "care_self_report_draft"):
        op.drop_table(table)
