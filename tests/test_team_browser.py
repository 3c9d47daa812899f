"""Team mode in a real browser: page URLs opened directly as the first request of a fresh server go
through the frame and the sign-in gate; two people in two roles sign in through a real OpenID
provider (`oidc-provider-mock`, started here on a free port) with Streamlit's `st.login`.

Chromium is driven by Playwright (Debian's chromium, as in test_browser.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskcraft_core.settings import ENV_FIELDS, Settings
from taskcraft_core.store import Store
from tests.curation_factory import make_task
from tests.studio_server import CHROMIUM_ARGS, ROOT, free_port, wait_healthy
from tests.test_browser import _chromium, _settle, _until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = "When did the Halvard Observatory open its doors?"
PEOPLE = {"ada": ("ada@example.org", "Ada Admin"), "rob": ("rob@example.org", "Rob Reviewer")}


def seeded_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    Store(Settings(home=home).resolved_database_url).add_tasks([make_task("t1", QUESTION, "1931")])
    return home


@contextmanager
def studio(home: Path, secrets: str | None = None) -> Iterator[str]:
    """`streamlit run app.py` on a free port; with `secrets`, a secrets file in a temp folder (team mode)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_FIELDS} | {"TASKCRAFT_HOME": str(home)}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true"]
    if secrets is not None:
        secrets_file = home.parent / "secrets" / "secrets.toml"
        secrets_file.parent.mkdir(exist_ok=True)
        secrets_file.write_text(secrets.replace("STUDIO_PORT", str(port)), encoding="utf-8")
        command += ["--secrets.files", str(secrets_file)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@contextmanager
def identity_provider() -> Iterator[str]:
    """oidc-provider-mock on a free port with the two people's claims preset."""
    port = free_port()
    claims = [f'{{"sub": "{sub}", "email": "{email}", "name": "{name}", "email_verified": true}}'
              for sub, (email, name) in PEOPLE.items()]
    command = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)]
    for claim in claims:
        command += ["--user-claims", claim]
    provider = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _answers(f"{url}/.well-known/openid-configuration"), "the identity provider", 30)
        yield url
    finally:
        provider.terminate()
        provider.wait(timeout=20)


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _goto(page, url: str) -> None:  # noqa: ANN001 (playwright's Page)
    page.goto(url)
    page.get_by_role("heading").first.wait_for(timeout=30_000)
    _settle(page)


def _sidebar_text(page) -> str:  # noqa: ANN001
    return page.locator("[data-testid='stSidebar']").inner_text()


def _nav_links(page) -> list[str]:  # noqa: ANN001
    """The navigation's page titles (each link's text is its icon's name, then its title)."""
    return [text.split("\n")[-1].strip() for text in page.locator("[data-testid='stSidebarNavLink']").all_inner_texts()]


def test_page_urls_opened_first_on_a_fresh_server_get_the_frame(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    home = seeded_home(tmp_path)
    for first in ("review", "settings"):
        with studio(home) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            _goto(page, f"{url}/{first}")
            sidebar = _sidebar_text(page)
            assert "Data home" in sidebar and str(home.resolve()) in sidebar and "Offline engine" in sidebar
            assert _nav_links(page) == ["Home", "Corpus", "Generate", "Review", "Insights",
                                                        "Duplicates", "Export", "Settings"]
            assert page.get_by_role("heading", name=first.capitalize()).first.is_visible()
            browser.close()


SECRETS = """
[auth]
redirect_uri = "http://127.0.0.1:STUDIO_PORT/oauth2callback"
cookie_secret = "a-long-random-string-for-the-test-0123456789"
client_id = "taskcraft-studio"
client_secret = "not-a-secret-here"
server_metadata_url = "PROVIDER/.well-known/openid-configuration"

[taskcraft.roles]
admins = ["ada@example.org"]
reviewers = ["rob@example.org"]
default = "viewer"
"""


def _sign_in(page, url: str, subject: str) -> None:  # noqa: ANN001
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name=subject, exact=True).click()  # the provider's preset user
    page.wait_for_url(f"{url}/**", timeout=30_000)
    page.get_by_text("Signed in").wait_for(timeout=30_000)
    _settle(page)


def test_two_people_in_two_roles_sign_in_through_a_real_identity_provider(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    home = seeded_home(tmp_path)
    store = Store(Settings(home=home).resolved_database_url)
    with identity_provider() as provider, studio(home, SECRETS.replace("PROVIDER", provider)) as url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)

        # A deep link as the very first request: the gate, nothing of the page or its tasks.
        rob = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        _goto(rob, f"{url}/review")
        expect(rob.get_by_text("Sign in to open the studio.")).to_be_visible()
        assert QUESTION not in rob.content() and rob.locator("[data-testid='stSidebarNavLink']").count() == 0

        _sign_in(rob, url, "rob")
        assert "Rob Reviewer <rob@example.org> · reviewer" in _sidebar_text(rob)
        assert _nav_links(rob) == ["Home", "Review", "Insights", "Duplicates"]
        _goto(rob, f"{url}/review")
        expect(rob.get_by_text("Reviewing as Rob Reviewer <rob@example.org> (reviewer)")).to_be_visible()
        rob.get_by_role("button", name="Accept").click()
        _until(lambda: [r.reviewer for r in store.all_reviews()] == ["rob@example.org"], "rob's decision")
        _goto(rob, f"{url}/settings")  # not his page: the studio shows its default page instead
        assert not rob.get_by_role("heading", name="Settings").is_visible()
        assert "Audit log" not in rob.content()

        ada = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        _goto(ada, f"{url}/settings")
        _sign_in(ada, url, "ada")
        assert "Ada Admin <ada@example.org> · admin" in _sidebar_text(ada)
        _goto(ada, f"{url}/settings")
        expect(ada.get_by_role("heading", name="Settings")).to_be_visible()
        expect(ada.get_by_role("heading", name="Audit log")).to_be_visible()
        assert store.get_task("t1").status == "accepted"  # type: ignore[union-attr]
        browser.close()


def test_a_task_link_opened_signed_out_opens_that_task_after_sign_in(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    home = seeded_home(tmp_path)
    linked = "When was the harbour ledger of 1887 catalogued?"
    Store(Settings(home=home).resolved_database_url).add_tasks([make_task("t2", linked, "1902")])
    with identity_provider() as provider, studio(home, SECRETS.replace("PROVIDER", provider)) as url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        rob = context.new_page()
        _goto(rob, f"{url}/review?task=t2")
        expect(rob.get_by_text("The linked task opens after sign-in.")).to_be_visible()
        _sign_in(rob, url, "rob")  # the provider sends him back to the studio's root
        expect(rob.get_by_text(linked, exact=True)).to_be_visible(timeout=30_000)
        assert "task=t2" in rob.url and QUESTION not in rob.content()

        later = context.new_page()  # the link is used once: a new tab opens the studio as usual
        _goto(later, url)
        expect(later.get_by_role("heading", name="TaskCraft Studio")).to_be_visible()
        assert linked not in later.content()
        browser.close()
