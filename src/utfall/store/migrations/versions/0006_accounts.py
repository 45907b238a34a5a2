"""accounts: login outcome and device per attempt, password change and last login times

Revision ID: 0006_accounts
Revises: 0003_access
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_accounts"
down_revision = "0003_access"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("login_attempt", sa.Column("outcome", sa.String(20), nullable=True))
    op.add_column("login_attempt", sa.Column("device", sa.String(64), nullable=True))
    op.create_index("ix_login_attempt_device", "login_attempt", ["device"])
    op.add_column("app_user", sa.Column("password_changed_at", TZ, nullable=True))
    op.add_column("app_user", sa.Column("last_login_at", TZ, nullable=True))


def downgrade() -> None:
    op.drop_index("ix_login_attempt_device", table_name="login_attempt")
    with op.batch_alter_table("login_attempt") as batch:
        batch.drop_column("device")
        batch.drop_column("outcome")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("last_login_at")
        batch.drop_column("password_changed_at")
