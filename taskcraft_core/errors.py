"""The one error family the interface catches and shows; anything else is a bug and surfaces."""

from __future__ import annotations


class TaskCraftError(Exception):
    """A failure a user can understand and act on: what went wrong, and a hint what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class IngestError(TaskCraftError):
    """A source could not be turned into a document."""


class UnsafeURLError(IngestError):
    """A URL was refused before any request was made."""


class ReviewConflict(TaskCraftError):
    """The task's review state changed since the one a decision was made on (someone decided since)."""

    def __init__(self, message: str, hint: str = "", current_review_id: int | None = None) -> None:
        super().__init__(message, hint)
        self.current_review_id = current_review_id  # the state now, to decide on top of it knowingly


class PermissionDenied(TaskCraftError):
    """The acting reviewer may not do this (e.g. adjudicate without being an adjudicator)."""


class ModelOutputError(TaskCraftError):
    """A model answered, but not in the shape that was asked for."""


class ModelUnavailableError(TaskCraftError):
    """The model endpoint could not be reached or kept failing."""


class EnvironmentFailure(TaskCraftError):
    """The machine failed the studio, not the input: a damaged database file, a read-only data home,
    a full disk, a broken index. `path` names the file or folder concerned; `kind` is one of
    "damaged", "missing", "read_only", "disk_full", "index"."""

    def __init__(self, message: str, hint: str = "", path: str = "", kind: str = "") -> None:
        super().__init__(message, hint)
        self.path = path
        self.kind = kind


class ModelCallFailed(ModelOutputError):
    """One call got no usable answer after its retries (a transient fault mid-run: a 5xx, a timeout, a
    proxy's error page): the candidate it served fails with this reason, the unit and the run go on.
    A call a unit cannot do without (a chunk's conclusions) fails that unit as ModelUnavailableError."""
