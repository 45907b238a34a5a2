"""import integrity: source system of an extract, changes per import, wider contact ids

Revision ID: 0004_import_integrity
Revises: 0001_foundation

``contact.source`` records the system a contact came from (``manifest.json``
``source``); the stored ``contact_id`` of such a contact is ``source:contact_id``, so
the id columns widen from 64 to 100 characters (30 for the source, 1 for the colon,
64 for the extract's id; the extract itself still allows at most 64). SQLite does not
enforce VARCHAR lengths, so only PostgreSQL alters the column types (a catalogue-only
change there). ``import_batch.changes`` holds the new/changed/unchanged counts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_import_integrity"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild on SQLite)
    op.add_column("contact", sa.Column("source", sa.String(30), nullable=True))
    op.add_column("import_batch", sa.Column("source", sa.String(30), nullable=True))
    op.add_column("import_batch", sa.Column("changes", sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("contact", "contact_id", type_=sa.String(100),
                        existing_type=sa.String(64), existing_nullable=False)
        op.alter_column("procedure", "contact_id", type_=sa.String(100),
                        existing_type=sa.String(64), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("procedure", "contact_id", type_=sa.String(64),
                        existing_type=sa.String(100), existing_nullable=True)
        op.alter_column("contact", "contact_id", type_=sa.String(64),
                        existing_type=sa.String(100), existing_nullable=False)
    with op.batch_alter_table("import_batch") as batch_op:
        batch_op.drop_column("changes")
        batch_op.drop_column("source")
    with op.batch_alter_table("contact") as batch_op:
        batch_op.drop_column("source")
