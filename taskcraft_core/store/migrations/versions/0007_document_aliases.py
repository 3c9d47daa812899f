"""document names: aliases, the page title as written, the main heading and the site name

Revision ID: 0007_document_aliases
Revises: 0002_document_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_document_aliases"
down_revision = "0004_review_rounds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("aliases", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("page_title", sa.Text(), nullable=True))
        batch.add_column(sa.Column("heading", sa.Text(), nullable=True))
        batch.add_column(sa.Column("site_name", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        for column in ("site_name", "heading", "page_title", "aliases"):
            batch.drop_column(column)
