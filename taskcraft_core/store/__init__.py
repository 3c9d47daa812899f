"""The database owns the data: SQLAlchemy tables, migrations, and the Store over them."""

from taskcraft_core.store.database import DocumentSummary, Store, TaskFilter

__all__ = ["DocumentSummary", "Store", "TaskFilter"]
