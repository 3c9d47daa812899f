"""The URL guard and the capped fetch, against a real server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from taskcraft_core.errors import IngestError, UnsafeURLError
from taskcraft_core.ingest import web
from taskcraft_core.ingest.web import check_url, fetch_url, human_size
from taskcraft_core.settings import Settings
from tests.local_http import PAGE, closed_port, local_server


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with local_server() as url:
        yield url


@pytest.fixture
def allowing(settings: Settings) -> Settings:
    return settings.with_changes(allow_private_urls=True, url_max_bytes=1000, url_timeout_s=5)


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("http://127.0.0.1:8000/", "resolves to 127.0.0.1, a loopback address"),
        ("http://localhost/", "a loopback address"),
        ("http://[::1]/", "resolves to ::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address"),
        ("http://10.1.2.3/", "resolves to 10.1.2.3, a private address"),
        ("http://192.168.0.10/", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254, a link-local address"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://240.0.0.1/", "a reserved address"),
    ],
)
def test_non_public_addresses_are_refused_by_default(url: str, phrase: str) -> None:
    with pytest.raises(UnsafeURLError) as caught:
        check_url(url)
    assert phrase in caught.value.message
    assert "allow_private_urls" in caught.value.hint


@pytest.mark.parametrize(
    ("url", "phrase"),
    [("ftp://example.org/file.txt", "only http and https URLs can be fetched, not 'ftp'"),
     ("file:///etc/passwd", "not 'file'"),
     ("http:///path-only", "the URL has no host name")],
)
def test_other_schemes_and_hostless_urls_are_refused_even_when_private_is_allowed(url: str, phrase: str) -> None:
    with pytest.raises(UnsafeURLError, match=phrase):
        check_url(url, allow_private=True)


def test_public_address_passes_the_guard() -> None:
    check_url("http://93.184.215.14/")  # an IP literal resolves without any network


def test_loopback_server_is_refused_by_default_and_fetched_when_allowed(
    base_url: str, settings: Settings, allowing: Settings
) -> None:
    with pytest.raises(UnsafeURLError):
        fetch_url(f"{base_url}/page.html", settings)
    fetched = fetch_url(f"{base_url}/page.html", allowing)
    assert (fetched.content_type, fetched.data) == ("text/html", PAGE)


def test_a_name_for_loopback_is_refused_by_default_and_fetched_when_allowed(
    base_url: str, settings: Settings, allowing: Settings
) -> None:
    url = base_url.replace("127.0.0.1", "localhost") + "/page.html"
    with pytest.raises(UnsafeURLError) as caught:
        fetch_url(url, settings)
    assert caught.value.message.startswith("the host localhost resolves to ")
    assert "a loopback address" in caught.value.message
    assert fetch_url(url, allowing).data == PAGE


class EchoHost(BaseHTTPRequestHandler):
    """Answers with the Host header it was sent."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body = self.headers["Host"].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_request_goes_to_the_checked_address_with_the_host_name_kept(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # harbour.test cannot resolve (.test is reserved), so only the checked address can be reached;
    # the guard is told 127.0.0.1 is public, as a rebinding name would look when first resolved.
    resolved: list[str] = []
    monkeypatch.setattr(
        web, "_resolve", lambda host, port: resolved.append(host) or [ipaddress.ip_address("127.0.0.1")]
    )
    monkeypatch.setattr(web, "_address_kind", lambda address: None)
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://harbour.test:{server.server_address[1]}/tides.txt"
        fetched = fetch_url(url, settings.with_changes(url_timeout_s=5))
    finally:
        server.shutdown()
        server.server_close()
    assert (fetched.final_url, fetched.data) == (url, f"harbour.test:{server.server_address[1]}".encode())
    assert resolved == ["harbour.test"]


def test_redirects_are_followed_and_reported(base_url: str, allowing: Settings) -> None:
    fetched = fetch_url(f"{base_url}/moved", allowing)
    assert fetched.final_url == f"{base_url}/page.html"
    assert fetched.url == f"{base_url}/moved"


@pytest.mark.parametrize(
    ("path", "phrase"),
    [
        ("/image.png", "unsupported content type 'image/png'"),
        ("/big.txt", "the response is larger than the 1.0 kB limit (url_max_bytes)"),
        ("/stream.txt", "the response is larger than the 1.0 kB limit (url_max_bytes)"),
        ("/missing", "the server answered 404 Not Found"),
    ],
)
def test_bad_responses_get_clear_errors(base_url: str, allowing: Settings, path: str, phrase: str) -> None:
    with pytest.raises(IngestError) as caught:
        fetch_url(base_url + path, allowing)
    assert caught.value.message == phrase


def test_unreachable_server_is_a_clear_error(allowing: Settings) -> None:
    port = closed_port()
    with pytest.raises(IngestError) as caught:
        fetch_url(f"http://127.0.0.1:{port}/page.html", allowing)
    assert caught.value.message.startswith(f"could not connect to 127.0.0.1:{port}")


def test_human_size() -> None:
    assert [human_size(n) for n in (512, 6335, 10_000_000)] == ["512 bytes", "6.3 kB", "10.0 MB"]
