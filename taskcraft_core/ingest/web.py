"""Fetching a URL safely: the guard and the download shared by ingestion and the agent's fetch_url tool.

A URL is refused before any request when it is not http(s) or when its host resolves to an address
that is not public (loopback, private, link-local, reserved, ...), unless the user allowed such
addresses. Every redirect target passes the same guard, and each request connects to the address the
guard checked rather than resolving the name again. Responses are streamed with a size cap, an
overall deadline and a content-type check, so a hostile server cannot exhaust memory or time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel

from taskcraft_core.errors import IngestError, UnsafeURLError
from taskcraft_core.settings import Settings

# Content type -> the document type it is read as.
CONTENT_TYPES: dict[str, str] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
}
MAX_REDIRECTS = 5
PRIVATE_HINT = "set allow_private_urls (CLI: --allow-private-urls) to fetch from your own network"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchedResource(BaseModel):
    """The body of one successful response, with where it finally came from."""

    url: str
    final_url: str
    content_type: str
    data: bytes


def human_size(size: int) -> str:
    """Bytes as a person reads them: 512 bytes, 6.3 kB, 10.0 MB."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{size / 1000:.1f} kB" if size >= 1000 else f"{size} bytes"


def _address_kind(address: IPAddress) -> str | None:
    """Why an address is refused, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "unspecified", "reserved", "multicast", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-public"


def check_url(url: str, allow_private: bool = False) -> IPAddress | None:
    """Raise UnsafeURLError unless the URL is http(s) and its host resolves only to public addresses.

    Returns the address to connect to (the first one checked), so that the request goes where the check
    looked: resolving again could give another answer (DNS rebinding). None when private addresses are
    allowed: then nothing is checked and the client resolves the host itself.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURLError(f"only http and https URLs can be fetched, not {parts.scheme or 'a bare path'!r}")
    if not parts.hostname:
        raise UnsafeURLError("the URL has no host name")
    if allow_private:
        return None
    addresses = _resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    for address in addresses:
        kind = _address_kind(address)
        if kind:
            raise UnsafeURLError(
                f"the host {parts.hostname} resolves to {address}, "
                f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address; "
                "loopback, private and link-local addresses are refused",
                hint=PRIVATE_HINT,
            )
    return addresses[0]


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise IngestError(
            f"could not resolve the host {host} ({error})", hint="check the URL and the network"
        ) from None
    # Scope ids ("fe80::1%eth0") are not part of the address itself.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def fetch_url(url: str, settings: Settings, content_types: Mapping[str, str] = CONTENT_TYPES) -> FetchedResource:
    """Download one URL within the settings' timeout and size cap; redirects are guarded one by one."""
    deadline = time.monotonic() + settings.url_timeout_s
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target, headers, extensions = _pinned(current, check_url(current, settings.allow_private_urls))
        headers["Accept"] = ", ".join(content_types)
        try:
            # A client per hop: a pooled TLS connection to a shared address must not serve another host.
            with (
                httpx.Client(timeout=settings.url_timeout_s, follow_redirects=False) as client,
                client.stream("GET", target, headers=headers, extensions=extensions) as response,
            ):
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("location", ""))
                    continue
                content_type = _checked_response(response, content_types, settings.url_max_bytes)
                data = _read_capped(response, settings.url_max_bytes, deadline, settings.url_timeout_s)
                return FetchedResource(url=url, final_url=current, content_type=content_type, data=data)
        except httpx.TimeoutException:
            raise IngestError(
                f"no answer within {settings.url_timeout_s:g} s", hint="try again later or raise url_timeout_s"
            ) from None
        except httpx.HTTPError as error:
            raise IngestError(
                f"could not connect to {urlsplit(current).netloc} ({error})",
                hint="check that the URL is right and the server is reachable",
            ) from None
    raise IngestError(f"more than {MAX_REDIRECTS} redirects", hint="open the final URL directly")


def _pinned(url: str, address: IPAddress | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL to request, its headers and httpx extensions, so the connection goes to `address`.

    The Host header and the TLS server name (SNI, also the name the certificate is checked against)
    stay the URL's host, so virtual hosts and HTTPS work as if the client had resolved the name.
    """
    if address is None:
        return url, {}, {}
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii")
    return str(parsed.copy_with(host=str(address))), {"Host": parsed.netloc.decode("ascii")}, {"sni_hostname": host}


def _checked_response(response: httpx.Response, content_types: Mapping[str, str], max_bytes: int) -> str:
    """The response's content type, after refusing error statuses, unwanted types and declared oversize."""
    if response.status_code >= 400:
        raise IngestError(f"the server answered {response.status_code} {response.reason_phrase}")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in content_types:
        raise IngestError(
            f"unsupported content type {content_type or '(none)'!r}",
            hint="supported: " + ", ".join(sorted(content_types)),
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise IngestError(_too_large(max_bytes), hint="raise url_max_bytes to accept larger responses")
    return content_type


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float, timeout_s: float) -> bytes:
    """Read the body, stopping as soon as it passes the cap or the overall deadline."""
    parts: list[bytes] = []
    size = 0
    for part in response.iter_bytes():
        size += len(part)
        if size > max_bytes:
            raise IngestError(_too_large(max_bytes), hint="raise url_max_bytes to accept larger responses")
        if time.monotonic() > deadline:
            raise IngestError(f"the download took longer than {timeout_s:g} s", hint="raise url_timeout_s")
        parts.append(part)
    return b"".join(parts)


def _too_large(max_bytes: int) -> str:
    return f"the response is larger than the {human_size(max_bytes)} limit (url_max_bytes)"
