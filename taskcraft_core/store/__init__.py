"""The database owns the data: SQLAlchemy tables, migrations, and the Store over them."""

from taskcraft_core.store.database import Store
from taskcraft_core.store.documents import DocumentSummary
from taskcraft_core.store.tasks import TaskFilter

__all__ = ["DocumentSummary", "Store", "TaskFilter"]
