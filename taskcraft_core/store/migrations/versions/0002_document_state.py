"""document state: a document is "indexing" until its chunk vectors are stored, then "ready"

Revision ID: 0002_document_state
Revises: 0001
Create Date: 2026-11-30 05:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_document_state"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Documents stored before states existed were indexed in the same call: they are ready.
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="ready"))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("state")
