"""The agent's tools over a real store and index: passages with offsets, bounded reads, error
observations instead of crashes, fetch_url and web_search only when enabled."""

from __future__ import annotations

import pytest

from taskcraft_core.agent.tools import READ_LIMIT, make_tools, parse_passages
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.workspace import Workspace
from tests.generation_corpus import LIGHTHOUSE, add_document
from tests.local_http import local_server


def tools_of(workspace: Workspace, **options: object) -> dict:
    options = {"allow_fetch": False, **options}
    return {tool.name: tool for tool in make_tools(workspace, **options)}  # type: ignore[arg-type]


def test_search_returns_passages_whose_offsets_cut_their_text_from_the_document(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    observation = tools_of(workspace)["search_corpus"].invoke({"query": "keeper of the light", "k": 3})
    passages = parse_passages(observation)
    assert len(passages) == 1
    assert passages[0].document_id == document.id and passages[0].title == "Brenna Light"
    assert passages[0].text == document.text[passages[0].start:passages[0].end]


def test_read_document_by_range_page_and_default_is_bounded(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE + "More words here. " * 600)
    read = tools_of(workspace)["read_document"]
    by_range = read.invoke({"document_id": document.id, "start": 14, "end": 30})
    assert by_range.endswith("\n" + document.text[14:30])
    assert f"characters 14-30 of {len(document.text)}" in by_range
    assert read.invoke({"document_id": document.id}).endswith("\n" + document.text[:READ_LIMIT])
    assert read.invoke({"document_id": document.id, "page": 1}).endswith("\n" + document.text[:READ_LIMIT])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"document_id": "nope"}, "no document with id 'nope'"),
        ({"document_id": "DOC", "start": 50, "end": 10}, "invalid range start=50 end=10"),
        ({"document_id": "DOC", "page": 3}, "page 3 does not exist; the document has 1 page(s)"),
        ({"document_id": "DOC", "start": "soon"}, "start"),
        ({"page": 1}, "document_id"),
    ],
)
def test_bad_read_arguments_become_error_observations(workspace: Workspace, args: dict, expected: str) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    args = {key: document.id if value == "DOC" else value for key, value in args.items()}
    observation = tools_of(workspace)["read_document"].invoke(args)
    assert expected in observation


def test_bad_search_arguments_become_error_observations(workspace: Workspace) -> None:
    search = tools_of(workspace)["search_corpus"]
    assert "the query is empty" in search.invoke({"query": "  "})
    assert "k" in search.invoke({"query": "light", "k": 99})


def test_fetch_url_only_when_allowed_and_guarded(settings: Settings, store: Store, index: VectorIndex) -> None:
    closed = Workspace(settings, store, index)
    assert sorted(tools_of(closed)) == ["read_document", "search_corpus"]
    refused = tools_of(closed, allow_fetch=True)["fetch_url"]
    with local_server() as base:
        assert "loopback" in refused.invoke({"url": f"{base}/notes.txt"})
        opened = Workspace(settings.with_changes(allow_private_urls=True), store, index)
        fetched = tools_of(opened, allow_fetch=True)["fetch_url"].invoke({"url": f"{base}/notes.txt"})
    assert fetched.endswith("Harbour notes: the quay is 640 metres long.\n")


def test_web_search_only_with_a_provider(workspace: Workspace) -> None:
    queries: list[str] = []

    def provider(query: str) -> str:
        queries.append(query)
        return "1. Brenna Light - https://example.org/brenna"

    tools = tools_of(workspace, web_search=provider)
    assert tools["web_search"].invoke({"query": "brenna light"}) == "1. Brenna Light - https://example.org/brenna"
    assert queries == ["brenna light"]
    assert "the query is empty" in tools["web_search"].invoke({"query": ""})


def test_web_search_from_a_configured_searxng_endpoint(settings: Settings, store: Store, index: VectorIndex) -> None:
    with local_server() as base:
        configured = settings.with_changes(web_search_url=f"{base}/search", allow_private_urls=True)
        search = tools_of(Workspace(configured, store, index))["web_search"]
        assert search.invoke({"query": "brenna light"}) == (
            "1. Brenna Light - https://example.org/brenna\n   A lighthouse lit in 1894.\n"
            "2. Tides - https://example.org/tides")
        broken = configured.with_changes(web_search_url=f"{base}/missing")
        assert tools_of(Workspace(broken, store, index))["web_search"].invoke({"query": "x"}) == (
            "the server answered 404 Not Found")
        guarded = settings.with_changes(web_search_url=f"{base}/search")
        assert "loopback" in tools_of(Workspace(guarded, store, index))["web_search"].invoke({"query": "brenna light"})
