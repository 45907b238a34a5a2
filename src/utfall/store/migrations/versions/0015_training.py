"""staff training records per unit (structure measures)

Revision ID: 0015_training
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_training"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_id", sa.String(64), sa.ForeignKey("unit.unit_id"), nullable=False),
        sa.Column("staff_ref", sa.String(64), nullable=False),
        sa.Column("course_id", sa.String(40), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
    )
    op.create_index("ix_training_record_unit_id", "training_record", ["unit_id"])


def downgrade() -> None:
    op.drop_index("ix_training_record_unit_id", "training_record")
    op.drop_table("training_record")
