"""invitations and reminders of self-report links, and the message log

Revision ID: 0013_messages
Revises: 0002_care
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_messages"
down_revision = "0002_care"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
KEY = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "message_link",
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("care_self_report_token.id"),
                  primary_key=True),
        sa.Column("person_key", KEY, nullable=False, index=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("link_enc", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
    )
    op.create_table(
        "message_invitation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_id", sa.Integer(), sa.ForeignKey("care_self_report_token.id"),
                  nullable=False, index=True),
        sa.Column("person_key", KEY, nullable=False, index=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient_enc", sa.Text(), nullable=True),
        sa.Column("recipient_hash", sa.String(64), nullable=False),
        sa.Column("recipient_masked", sa.String(80), nullable=False),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("stopped_at", TZ, nullable=True),
        sa.Column("stop_reason", sa.String(20), nullable=True),
    )
    op.create_table(
        "message_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invitation_id", sa.Integer(), sa.ForeignKey("message_invitation.id"),
                  nullable=False, index=True),
        sa.Column("token_id", sa.Integer(), nullable=False, index=True),
        sa.Column("person_key", KEY, nullable=False, index=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient_hash", sa.String(64), nullable=False),
        sa.Column("recipient_masked", sa.String(80), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("sent_by", sa.String(100), nullable=False),
        sa.Column("sent_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("message_log")
    op.drop_table("message_invitation")
    op.drop_table("message_link")
