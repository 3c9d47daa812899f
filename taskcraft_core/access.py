"""Who is acting and what they may do: the Principal every data-changing service checks, and roles.

Team mode (an identity provider configured): the principal is the signed-in person, identified by
email, with the role `[taskcraft.roles]` of the secrets gives them. Local mode (no sign-in): one
person at their own machine, who may do everything; their typed reviewer name is their identity.
Roles nest: an admin may do what a curator may, a curator what a reviewer may, and so on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

from taskcraft_core.errors import TaskCraftError

Role = Literal["viewer", "reviewer", "curator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "reviewer", "curator", "admin")  # least to most
Permission = Literal[
    "read", "review", "ingest", "generate", "export", "import", "settings", "private_urls", "delete",
    "import_decisions", "audit",
]
# The least role that grants each permission.
LEAST_ROLE: dict[Permission, Role] = {
    "read": "viewer",
    "review": "reviewer",  # decisions on the Review page, keep/dismiss on the Duplicates page
    "ingest": "curator",
    "generate": "curator",
    "export": "curator",
    "import": "curator",  # tasks come in pending; their decisions are kept as history only
    "settings": "admin",  # endpoints, keys, models, thresholds
    "private_urls": "admin",  # URLs on loopback, private or link-local addresses
    "delete": "admin",
    "import_decisions": "admin",  # imported decisions take effect as they are
    "audit": "admin",
}
ACTIONS: dict[Permission, str] = {
    "read": "read the studio", "review": "decide on tasks", "ingest": "add documents", "generate": "run generation",
    "export": "export tasks", "import": "import tasks", "settings": "change settings",
    "private_urls": "use private addresses", "delete": "delete documents",
    "import_decisions": "import decisions as they are", "audit": "read the audit log",
}
ROLE_LISTS: dict[str, Role] = {"admins": "admin", "curators": "curator", "reviewers": "reviewer", "viewers": "viewer"}


class AccessDenied(TaskCraftError):
    """The acting principal's role does not allow the action."""


class Principal(BaseModel):
    """The person acting: `id` is the stable identity (the email when signed in, the typed name in
    local mode) and what reviews and the audit log record; `name` is for display."""

    id: str
    name: str = ""
    role: Role = "viewer"
    local: bool = False

    model_config = {"frozen": True}

    @property
    def label(self) -> str:
        """How the interface names this person: name and email when they differ."""
        if self.local:
            return self.name or self.id or "local user"
        return f"{self.name} <{self.id}>" if self.name and self.name != self.id else self.id

    def can(self, permission: Permission) -> bool:
        return ROLES.index(self.role) >= ROLES.index(LEAST_ROLE[permission])


def local_principal(name: str = "") -> Principal:
    """The one person of local mode (and the command line): every permission, named as they typed."""
    name = name.strip()
    return Principal(id=name, name=name, role="admin", local=True)


def require(principal: Principal, permission: Permission) -> None:
    """Raise AccessDenied, naming the person, their role and the role needed, unless allowed."""
    if principal.can(permission):
        return
    needed = LEAST_ROLE[permission]
    raise AccessDenied(
        f"{principal.label} ({principal.role}) may not {ACTIONS[permission]}: that needs the {needed} role.",
        hint=f"Ask an admin to add {principal.id} to `{needed}s` in [taskcraft.roles] of the secrets.",
    )


def acting_reviewer(principal: Principal, reviewer: str | None = None) -> str:
    """The name a decision is recorded under: the principal's id, once their role allows deciding. A
    signed-in person decides only as themselves (a different `reviewer` is refused)."""
    require(principal, "review")
    if reviewer is not None and not principal.local and reviewer.strip() != principal.id:
        raise AccessDenied(f"{principal.label} may decide only as themselves, not as {reviewer!r}.")
    return principal.id if not principal.local or reviewer is None else reviewer


def role_for(email: str, roles: Mapping[str, Any]) -> Role:
    """The role `[taskcraft.roles]` gives an email (case-insensitive); the highest when listed twice,
    else `default` (viewer when not set)."""
    wanted = email.strip().lower()
    granted = [role for key, role in ROLE_LISTS.items()
               if wanted in {str(listed).strip().lower() for listed in roles.get(key, [])}]
    if granted:
        return max(granted, key=ROLES.index)
    default = str(roles.get("default", "viewer"))
    for role in ROLES:
        if role == default:
            return role
    raise TaskCraftError(f"Unknown default role {default!r} in [taskcraft.roles].", f"Use one of {', '.join(ROLES)}.")


def signed_in_principal(email: str | None, name: str | None, roles: Mapping[str, Any]) -> Principal:
    """The principal of a signed-in identity; the email is required (it is the stable id)."""
    if not email or "@" not in email:
        raise AccessDenied("The identity provider did not give an email address for this account.",
                           hint="Configure the provider to release the email claim (scope `email`).")
    email = email.strip().lower()
    return Principal(id=email, name=(name or "").strip() or email, role=role_for(email, roles))
