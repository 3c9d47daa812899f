"""Changing the model endpoint and the other settings of a session: who may, which URLs, which key.

A key belongs to the base URL it was configured with (`Settings.with_changes` enforces it
everywhere): a session that moves the base URL gives its own key or none, so the server's key never
travels to a host a visitor typed. A new base URL passes the URL guard (loopback, private and
link-local addresses only where allowed) and never carries a user name or password.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, ValidationError

from taskcraft_core.access import require
from taskcraft_core.errors import TaskCraftError, UnsafeURLError
from taskcraft_core.ingest.web import check_url
from taskcraft_core.settings import Settings, same_endpoint
from taskcraft_core.workspace import Workspace


def check_endpoint_url(base_url: str, allow_private: bool) -> None:
    """TaskCraftError unless the base URL is http(s), names no credentials and passes the URL guard."""
    try:
        Settings(openai_base_url=base_url)
    except ValidationError as invalid:
        raise TaskCraftError(f"The endpoint {_without_userinfo(base_url)} was refused: "
                             f"{invalid.errors()[0]['msg'].removeprefix('Value error, ')}.",
                             "Put the key in the API key field.") from None
    try:
        check_url(base_url, allow_private=allow_private)
    except UnsafeURLError as unsafe:
        raise TaskCraftError(f"The endpoint {base_url} was refused: {unsafe.message}.",
                             "An admin can allow a private address for the endpoint on the Settings page, or set "
                             "allow_private_urls.") from None


def session_settings(
    workspace: Workspace, overrides: dict[str, Any], *, api_key: str = "", previous_key: SecretStr | str | None = None,
    allow_private_endpoint: bool = False,
) -> dict[str, Any]:
    """The overrides a session keeps after saving the Settings form, checked: the principal may change
    settings (and allow a private endpoint), a new base URL passes the guard, and the key is the one
    typed, else the session's earlier key if the endpoint did not move, else none. Audited (without
    the key's value)."""
    require(workspace.principal, "settings")
    if allow_private_endpoint:
        require(workspace.principal, "private_urls")
    current = workspace.settings
    base_url = (overrides.get("openai_base_url") or "").strip() or None
    moved = not same_endpoint(base_url, current.openai_base_url)
    if base_url and moved:
        private_ok = allow_private_endpoint or current.allow_private_urls or workspace.principal.local
        check_endpoint_url(base_url, allow_private=private_ok)
    key = api_key.strip() or (None if moved else previous_key)
    saved = {**overrides, "openai_base_url": base_url, "openai_api_key": key}
    changed = sorted(name for name, value in overrides.items()
                     if name != "openai_api_key" and value not in (None, "") and value != getattr(current, name, None))
    workspace.audit("settings", "session settings", {
        "changed": {name: overrides[name] for name in changed}, "api_key": "typed" if api_key.strip() else
        "kept" if key else "none", "endpoint": base_url or current.endpoint,
    })
    return saved


def _without_userinfo(url: str) -> str:
    """The URL as it may be shown: no user name or password."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)
    host[0] = host[0].rsplit("@", 1)[-1]
    return f"{scheme}://{'/'.join(host)}" if rest else url
