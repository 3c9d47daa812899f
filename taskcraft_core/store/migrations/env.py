"""Alembic environment: runs on the connection the Store hands over (see `store.upgrade_schema`)."""

from alembic import context

from taskcraft_core.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
