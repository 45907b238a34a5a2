"""register exports and the delivery log (what was sent, when, content hash)

Revision ID: 0008_register
Revises: 0002_care
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_register"
down_revision = "0002_care"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "register_export",
        sa.Column("export_id", sa.String(40), primary_key=True),
        sa.Column("register", sa.String(40), nullable=False),
        sa.Column("mapping_version", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("forms", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("receipt_status", sa.String(20), nullable=True),
        sa.Column("receipt_at", TZ, nullable=True),
        sa.Column("receipt_detail", sa.JSON(), nullable=True),
    )
    op.create_table(
        "register_delivery",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("export_id", sa.String(40), sa.ForeignKey("register_export.export_id"),
                  nullable=False),
        sa.Column("register", sa.String(40), nullable=False),
        sa.Column("form_key", sa.String(64), nullable=False),
        sa.Column("form", sa.String(40), nullable=False),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("trigger_date", sa.Date(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(10), nullable=False),  # new / update / resend
        sa.Column("delivered_at", TZ, nullable=False),
        sa.Column("rejected", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_register_delivery_form", "register_delivery", ["register", "form_key"])
    op.create_index("ix_register_delivery_export", "register_delivery", ["export_id"])


def downgrade() -> None:
    op.drop_index("ix_register_delivery_export", "register_delivery")
    op.drop_index("ix_register_delivery_form", "register_delivery")
    op.drop_table("register_delivery")
    op.drop_table("register_export")
