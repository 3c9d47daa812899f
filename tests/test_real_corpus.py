"""Ingestion and naming on real pages nobody here wrote: three pages of the Python 3.11 documentation
(Debian's python3.11-doc, tests/fixtures/python_docs), with Sphinx's navigation, sidebars and footers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.depth import linking_documents, subject_names, web_passages
from taskcraft_core.generate.offline.cloze import cloze_question
from taskcraft_core.generate.offline.engine import OfflineEngine
from taskcraft_core.generate.text import fact_spans, normalise_answer, sentences
from taskcraft_core.generate.width import compatible
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.ingest.chunking import chunk_document
from taskcraft_core.ingest.loaders import load_document
from taskcraft_core.ingest.names import document_names, site_affixes, strip_affixes
from taskcraft_core.ingest.pipeline import Source, ingest_sources
from taskcraft_core.models.chat import Usage
from taskcraft_core.runs.service import RunRequest, create_run, execute_run
from taskcraft_core.runs.spread import round_robin
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.workspace import Workspace
from tests import local_http

PYTHON_DOCS = Path(__file__).parent / "fixtures" / "python_docs"
SUFFIX = "Python 3.11.2 documentation"


def run_tasks(workspace: Workspace, run_id: str) -> list[Task]:
    return workspace.store.list_tasks(TaskFilter(run_ids=[run_id]), limit=None, with_trajectory=False)


@pytest.fixture
def workspace(settings: Settings, store: Store, index: VectorIndex) -> Workspace:
    return Workspace(settings, store, index)


def page(name: str) -> Source:
    return Source(name=f"library/{name}.html", data=(PYTHON_DOCS / f"{name}.html").read_bytes())


def test_sphinx_navigation_sidebar_and_footer_do_not_reach_the_text() -> None:
    raw = (PYTHON_DOCS / "shelve.html").read_bytes()
    assert b"Previous topic" in raw and b"Navigation" in raw and b"Copyright" in raw  # the chrome is there
    document = load_document("shelve.html", raw, "html")
    assert document.text.startswith("`shelve` — Python object persistence\nSource code: Lib/shelve.py\n"
                                    "A “shelf” is a persistent, dictionary-like object.")
    for chrome in ("Navigation", "next |", "previous |", "Python » 3.11.2 Documentation", "Previous topic",
                   "Next topic", "This Page", "Report a Bug", "Copyright", "©", "Quick search", "¶"):
        assert chrome not in document.text, chrome
    # Code blocks stay, fenced, so that sentence selection can leave them out.
    assert "```\nimport shelve\n\nd = shelve.open(filename)" in document.text
    # Links are read from the whole page (navigation included), for exploration.
    assert {"marshal.html", "copyreg.html", "pickle.html"} <= set(document.links)
    chunks = chunk_document(document, 2000, 200)
    assert all(document.text[c.start:c.end] == c.text for c in chunks)


def test_identifier_is_the_h1_and_the_site_suffix_never_stays(workspace: Workspace) -> None:
    report = ingest_sources([page("marshal"), page("copyreg"), page("shelve")], workspace)
    assert report.errors == []
    names = {d.source: d for d in workspace.store.document_names()}
    marshal = names["library/marshal.html"]
    assert marshal.title == "marshal — Internal Python object serialization"
    assert marshal.page_title == f"marshal — Internal Python object serialization — {SUFFIX}"
    assert marshal.aliases == ["marshal", "Internal Python object serialization", "marshal module",
                               "marshal format"]
    assert names["library/shelve.html"].title == "shelve — Python object persistence"
    assert names["library/copyreg.html"].title == "copyreg — Register pickle support functions"
    assert all(SUFFIX not in d.title and all(SUFFIX not in a for a in d.aliases) for d in names.values())
    # Search results carry the identifier too.
    assert {p.title for p in workspace.index.search_chunks("marshal", k=20)} <= {d.title for d in names.values()}


def test_a_page_ingested_later_reveals_the_affix_of_the_first(workspace: Workspace) -> None:
    ingest_sources([page("marshal")], workspace)
    alone = workspace.store.document_names()[0]
    # One page alone shows no affix (nothing to compare with), but its H1 is its identifier already.
    assert alone.title == "marshal — Internal Python object serialization"
    assert f"marshal — Internal Python object serialization — {SUFFIX}" in alone.aliases
    ingest_sources([page("copyreg")], workspace)
    renamed = {d.source: d for d in workspace.store.document_names()}["library/marshal.html"]
    assert all(SUFFIX not in alias for alias in renamed.aliases)


def test_affixes_come_from_titles_shared_by_several_pages_and_from_og_site_name() -> None:
    titles = ["json — JSON encoder and decoder — Python 3.11.2 documentation",
              "pickle — Python object serialization — Python 3.11.2 documentation",
              "Docs: Installing Python", "Docs: Using the shell", "Eiffel Tower"]
    affixes = site_affixes(titles, ["The Example Wiki", None])
    assert affixes == {"Python 3.11.2 documentation", "Docs", "The Example Wiki"}
    assert strip_affixes(titles[0], affixes) == "json — JSON encoder and decoder"
    assert strip_affixes("Docs: Installing Python", affixes) == "Installing Python"
    assert strip_affixes("Harbour | The Example Wiki", affixes) == "Harbour"
    assert strip_affixes("Eiffel Tower", affixes) == "Eiffel Tower"
    # A title that is nothing but an affix (the site's home page) keeps its name.
    assert strip_affixes("Python 3.11.2 documentation", affixes) == "Python 3.11.2 documentation"


def test_names_prefer_a_short_heading_and_find_kind_phrases_in_the_text() -> None:
    text = "The `json` module always produces str objects. Use the json command line tool."
    identifier, aliases = document_names("json — JSON encoder and decoder — Site", "json — JSON encoder and decoder",
                                         "json.html", text, {"Site"})
    assert (identifier, aliases) == ("json — JSON encoder and decoder",
                                     ["json", "JSON encoder and decoder", "json module", "json command"])
    long_heading = "A heading that is in fact a whole sentence about the tides of the harbour and more"
    assert document_names("Tides | Site", long_heading, "tides.html", "", {"Site"}) == ("Tides", [])
    assert document_names(None, None, "notes.txt", "", set()) == ("notes.txt", [])


# ---- offline questions: sentence selection, answer types, wording --------------------------------


def test_sentences_are_whole_and_never_from_code_contents_or_version_notes() -> None:
    # Text as the json and libtasn1 manuals write it (the examples), as stored after extraction.
    text = ("Changed in version 3.1: Added support for object_pairs_hook.\n"
            "This can be used to raise an exception if invalid JSON numbers are encountered, to avoid denial "
            "of service attacks. parse_constant, if specified, will be called with one of the following strings.\n"
            "```\n>>> json.dumps([1, 2, 3], separators=(',', ':'))\n"
            "This line in a code block is not prose at all.\n```\n"
            "1 Introduction . . . . . . . . . . . . . . . . . . . . . . . . 1\n"
            "If the data being deserialized is not a valid JSON document, a `JSONDecodeError` will be raised.")
    assert [s.text for s in sentences(text)] == [
        "This can be used to raise an exception if invalid JSON numbers are encountered, to avoid denial of "
        "service attacks.",
        "parse_constant, if specified, will be called with one of the following strings.",
        "If the data being deserialized is not a valid JSON document, a `JSONDecodeError` will be raised.",
    ]
    assert all(text[s.start:s.end] == s.text for s in sentences(text))


def test_answers_are_useful_types_and_asides_or_acronyms_are_not() -> None:
    def spans(sentence: str) -> list[tuple[str, str]]:
        return [(s.kind, s.text) for s in fact_spans(sentence, "json — JSON encoder and decoder",
                                                     ["json", "Python 3.11.2 documentation"])]

    assert spans("If the data being deserialized is not a valid JSON document, a `JSONDecodeError` will be "
                 "raised.") == [("code", "JSONDecodeError")]
    assert spans("JSON (JavaScript Object Notation), specified by RFC 7159 (which obsoletes RFC 4627) and by "
                 "ECMA-404, is a lightweight format.") == [("name", "RFC 7159")]
    assert spans("A malicious JSON string may cause the decoder to consume considerable CPU and memory "
                 "resources.") == []
    assert spans("If sort_keys is true (default: `False`), then the output of dictionaries will be sorted by "
                 "key.") == []
    assert spans("The `json` module always produces `str` objects, not `bytes` objects.") == [
        ("code", "str"), ("code", "bytes")]
    assert spans("Python was released in 1991 by Guido van Rossum.") == [("year", "1991"), ("name", "Guido van Rossum")]


def test_the_wh_phrase_fits_the_answer_and_a_leading_pronoun_is_named() -> None:
    title = "json — JSON encoder and decoder"

    def question(sentence: str, answer: str) -> str:
        span = next(s for s in fact_spans(sentence, title) if s.text == answer)
        return cloze_question(title, sentence, span)

    assert question("If the data is not a valid JSON document, a `JSONDecodeError` will be raised.",
                    "JSONDecodeError") == (
        "According to “json — JSON encoder and decoder”, if the data is not a valid JSON document, which exception "
        "will be raised?")
    assert question("Use the `pickle` module instead.", "pickle") == (
        "According to “json — JSON encoder and decoder”, use which module instead?")
    assert question("It was specified by Douglas Crockford in 2001.", "2001") == (
        "According to “json — JSON encoder and decoder”, json was specified by Douglas Crockford in what year?")
    assert question("This module can thus also be used as a YAML serializer by Kirill Simonov.",
                    "Kirill Simonov") == (
        "According to “json — JSON encoder and decoder”, the json module can thus also be used as a YAML "
        "serializer by whom?")


def test_width_groups_never_ask_one_answer_twice() -> None:
    def atomic(key: str, answer: str) -> Task:
        return Task(id=key, kind="atomic", question=f"According to “json”, question {key}?", golden_answer=answer,
                    content_identifier="json", engine="offline", model="offline")

    assert not compatible(atomic("a", "YAML"), atomic("b", "yaml"))
    assert compatible(atomic("a", "YAML"), atomic("b", "JSONDecodeError"))


# ---- runs on the real pages: spread, depth through links, distinct width answers ---------------


def real_workspace(tmp_path: Path, **settings: Any) -> Workspace:
    workspace = Workspace.open(Settings(home=tmp_path / "home", engine="offline", **settings))
    report = ingest_sources([page(name) for name in ("marshal", "copyreg", "shelve", "tomllib")], workspace)
    assert report.errors == []
    return workspace


def test_a_limited_run_draws_from_every_document(tmp_path: Path) -> None:
    workspace = real_workspace(tmp_path)
    run = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"], limit=4, concurrency=1)).id)
    tasks = run_tasks(workspace, run.id)
    verified = Counter(t.document_id for t in tasks if t.status == "pending")
    # Round-robin drawing and a share of ceil(4 / 4) = 1 verified task per document under the limit.
    assert sorted(verified.values()) == [1, 1, 1, 1]
    assert round_robin([["a0", "a1", "a2"], ["b0"], ["c0", "c1"]]) == ["a0", "b0", "c0", "a1", "c1", "a2"]


def test_per_document_caps_hold_without_a_limit(tmp_path: Path) -> None:
    workspace = real_workspace(tmp_path, max_verified_per_document=3, max_candidates_per_document=4)
    run = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"], concurrency=1)).id)
    tasks = run_tasks(workspace, run.id)
    assert max(Counter(t.document_id for t in tasks).values()) <= 4
    assert max(Counter(t.document_id for t in tasks if t.status == "pending").values()) == 3


@pytest.mark.slow
def test_depth_goes_through_a_page_that_links_to_the_identifiers_page(tmp_path: Path) -> None:
    workspace = real_workspace(tmp_path)
    ctx = GenerationContext(workspace, OfflineEngine(), Usage())
    titles = {d.id: d.title for d in workspace.store.list_documents()}
    marshal = "marshal — Internal Python object serialization"
    # tomllib and shelve link to marshal.html; only through the link does the short alias "marshal" count.
    assert sorted(titles[i] for i in linking_documents(marshal, ctx)) == [
        "shelve — Python object persistence", "tomllib — Parse TOML files"]
    assert subject_names(marshal, ctx) == [marshal, "marshal", "Internal Python object serialization",
                                           "marshal module", "marshal format"]
    run = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic", "depth", "width"],
                                                                  concurrency=1)).id)
    tasks = run_tasks(workspace, run.id)
    depth = [t for t in tasks if t.kind == "depth" and t.status == "pending"]
    assert depth, "no depth task on four cross-linked pages"
    through_tomllib = next(t for t in depth if t.golden_answer == "shelve")
    assert through_tomllib.question == (
        "According to the document on what “tomllib — Parse TOML files” describes in “See also The Tomli-W package "
        "is a TOML writer that can be used in conjunction with this module, providing a write API familiar to users "
        "of the standard library `___` and `pickle` modules.”, for general persistence and transfer of Python "
        "objects through RPC calls, see the modules `pickle` and which name?")
    assert through_tomllib.hops == 2 and through_tomllib.content_identifier == "tomllib — Parse TOML files"
    # The auxiliary hop's answer is the name the linking page writes ("marshal"), solved by the agent.
    assert through_tomllib.verification is not None and through_tomllib.verification.agent_answer == "shelve"
    widths = [t for t in tasks if t.kind == "width"]
    assert widths and all(len({normalise_answer(a) for a in t.golden_answer}) == len(t.golden_answer)
                          for t in widths)
    assert all(SUFFIX not in t.content_identifier for t in tasks)


def test_backward_search_also_reads_a_configured_web_search(workspace: Workspace,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(local_http.ROUTES, "/search?q=Brenna+Light&format=json",
                        (200, {"Content-Type": "application/json"}, local_http.SEARCH_RESULTS))
    assert web_passages("Brenna Light", GenerationContext(workspace, OfflineEngine(), Usage())) == []  # none set
    with local_http.local_server() as base:
        settings = workspace.settings.with_changes(web_search_url=f"{base}/search", allow_private_urls=True)
        ctx = GenerationContext(Workspace(settings, workspace.store, workspace.index), OfflineEngine(), Usage())
        [found] = web_passages("Brenna Light", ctx)
        assert (found.document_id, found.title, found.text) == ("https://example.org/brenna", "Brenna Light",
                                                                "A lighthouse lit in 1894.")
        missing = Workspace(settings.with_changes(web_search_url=f"{base}/missing"), workspace.store, workspace.index)
        assert web_passages("Brenna Light", GenerationContext(missing, OfflineEngine(), Usage())) == []
