"""Ingestion and naming on real pages nobody here wrote: three pages of the Python 3.11 documentation
(Debian's python3.11-doc, tests/fixtures/python_docs), with Sphinx's navigation, sidebars and footers."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.ingest.chunking import chunk_document
from taskcraft_core.ingest.loaders import load_document
from taskcraft_core.ingest.names import document_names, site_affixes, strip_affixes
from taskcraft_core.ingest.pipeline import Source, ingest_sources
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.workspace import Workspace

PYTHON_DOCS = Path(__file__).parent / "fixtures" / "python_docs"
SUFFIX = "Python 3.11.2 documentation"


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
