"""The tools a solving agent gets: search the corpus, read a stored document, and (when allowed)
fetch a URL or search the web.

Each tool's docstring is what the model reads, so it says what to pass and what comes back.
Bad arguments (an unknown document id, an empty range, a refused URL) raise ToolException, which
LangChain turns into an error observation: the agent sees what was wrong and can try again.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Sequence
from urllib.parse import unquote, urlencode, urljoin, urlsplit

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field, ValidationError

from taskcraft_core.agent.browser import BROWSER_TOOL_ARGS
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.index.vectors import Passage
from taskcraft_core.ingest.loaders import load_document
from taskcraft_core.ingest.web import CONTENT_TYPES, fetch_url
from taskcraft_core.schema import Document
from taskcraft_core.settings import Settings
from taskcraft_core.store import DocumentSummary
from taskcraft_core.workspace import Workspace

MAX_PASSAGES = 10
READ_LIMIT = 6000  # characters one read_document call returns at most
FETCH_LIMIT = 6000
MAX_SEARCH_RESULTS = 8
SEARCH_CONTENT_TYPES = {"application/json": "json"}

WebSearch = Callable[[str], str]
"""A search provider: query in, a text listing of results out (titles, URLs, snippets)."""


def format_passages(passages: list[Passage]) -> str:
    """The search observation: one header line per passage that says where to read on, then its text."""
    if not passages:
        return "No passages found."
    blocks = [
        f"[{rank}] document_id={p.document_id} title=“{p.title}” start={p.start} end={p.end} page={p.page}\n{p.text}"
        for rank, p in enumerate(passages, start=1)
    ]
    return "\n\n".join(blocks)


def read_range(document: Document, page: int | None, start: int | None, end: int | None) -> tuple[int, int]:
    """The character range to read: a whole page, an explicit range, or the start of the document,
    bounded to READ_LIMIT characters."""
    length = len(document.text)
    if page is not None:
        if not 1 <= page <= document.pages:
            raise ToolException(f"page {page} does not exist; the document has {document.pages} page(s)")
        offsets = [*document.page_offsets, length]
        start, end = offsets[page - 1], offsets[page]
    start = 0 if start is None else start
    end = min(length, start + READ_LIMIT) if end is None else end
    if not 0 <= start < length or end <= start:
        raise ToolException(f"invalid range start={start} end={end}; the document has {length} characters")
    return start, min(end, length, start + READ_LIMIT)


class SearchArgs(BaseModel):
    query: str = Field(description="What to look for, in natural language or keywords.")
    k: int = Field(5, ge=1, le=MAX_PASSAGES, description="How many passages to return (1-10).")


class ReadArgs(BaseModel):
    document_id: str = Field(description="The document_id shown by search_corpus.")
    page: int | None = Field(None, ge=1, description="A page number to read (PDFs have several pages).")
    start: int | None = Field(None, ge=0, description="First character offset to read.")
    end: int | None = Field(None, ge=1, description="Character offset to stop reading at.")


class FetchArgs(BaseModel):
    url: str = Field(description="An http(s) URL.")


class WebSearchArgs(BaseModel):
    query: str = Field(description="What to search the web for.")


def tool_schemas() -> dict[str, type[BaseModel]]:
    """Every tool the studio has (solver and explorer), by name, with its argument schema."""
    schemas: dict[str, type[BaseModel]] = {
        "search_corpus": SearchArgs, "read_document": ReadArgs, "fetch_url": FetchArgs,
        "web_search": WebSearchArgs, "list_links": LinksArgs, "follow_link": FollowArgs}
    return schemas | BROWSER_TOOL_ARGS


def make_tools(workspace: Workspace, *, allow_fetch: bool, web_search: WebSearch | None = None) -> list[BaseTool]:
    """The agent's tools over one workspace; fetch_url only when allowed, web_search only with a provider
    (given, or the search endpoint configured in settings)."""
    tools = [_search_tool(workspace), _read_tool(workspace)]
    if allow_fetch:
        tools.append(_fetch_tool(workspace))
    web_search = web_search or searxng_search(workspace.settings)
    if web_search is not None:
        tools.append(_web_search_tool(web_search))
    return tools


def invalid_arguments(error: ValidationError) -> str:
    """The observation for arguments that do not fit a tool's schema: which ones, and why."""
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return f"Error: invalid arguments ({problems})"


def _tool(func: Callable[..., str], name: str, description: str, args_schema: type[BaseModel]) -> BaseTool:
    return StructuredTool.from_function(
        func=func, name=name, description=description, args_schema=args_schema, handle_tool_error=True,
        handle_validation_error=invalid_arguments,
    )


def _search_tool(workspace: Workspace) -> BaseTool:
    def search_corpus(query: str, k: int = 5) -> str:
        if not query.strip():
            raise ToolException("the query is empty; say what to look for")
        return format_passages(workspace.index.search_chunks(query, k=k))

    return _tool(
        search_corpus, "search_corpus",
        "Search the document collection. Returns the best matching passages, each with its document_id, "
        "title, character offsets (start, end) and page, followed by the passage text.",
        SearchArgs,
    )


def _read_tool(workspace: Workspace) -> BaseTool:
    def read_document(document_id: str, page: int | None = None, start: int | None = None,
                      end: int | None = None) -> str:
        document = workspace.store.get_document(document_id)
        if document is None:
            raise ToolException(f"no document with id {document_id!r}; use a document_id from search_corpus")
        start, end = read_range(document, page, start, end)
        return (f"document_id={document.id} title=“{document.title}” characters {start}-{end} of "
                f"{len(document.text)}\n{document.text[start:end]}")

    return _tool(
        read_document, "read_document",
        f"Read a stored document: a page (page=N), a character range (start, end), or, with neither, "
        f"its beginning. Returns at most {READ_LIMIT} characters, with the range that was read.",
        ReadArgs,
    )


def _fetch_tool(workspace: Workspace) -> BaseTool:
    def fetch(url: str) -> str:
        try:
            resource = fetch_url(url, workspace.settings)
            document = load_document(url, resource.data, CONTENT_TYPES[resource.content_type], resource.final_url,
                                     workspace.settings)
        except TaskCraftError as refused:
            raise ToolException(str(refused)) from refused
        return f"url={resource.final_url} title=“{document.title}”\n{document.text[:FETCH_LIMIT]}"

    return _tool(
        fetch, "fetch_url",
        f"Download a web page or PDF and return its text (at most {FETCH_LIMIT} characters).",
        FetchArgs,
    )


def searxng_search(settings: Settings) -> WebSearch | None:
    """The configured search endpoint as a provider: SearXNG's JSON API, fetched through the URL guard."""
    if not settings.web_search_url:
        return None
    endpoint = settings.web_search_url

    def search(query: str) -> str:
        url = f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode({'q': query, 'format': 'json'})}"
        try:
            results = json.loads(fetch_url(url, settings, SEARCH_CONTENT_TYPES).data).get("results", [])
        except TaskCraftError as refused:
            raise ToolException(str(refused)) from refused
        except (json.JSONDecodeError, AttributeError) as error:
            raise ToolException(f"the search endpoint did not answer with search results ({error})") from error
        lines = [f"{n}. {r.get('title', '')} - {r.get('url', '')}\n   {r.get('content', '')}".rstrip()
                 for n, r in enumerate(results[:MAX_SEARCH_RESULTS], 1)]
        return "\n".join(lines) or "No web results."

    return search


def _web_search_tool(provider: WebSearch) -> BaseTool:
    def web_search(query: str) -> str:
        if not query.strip():
            raise ToolException("the query is empty; say what to look for")
        return provider(query)

    return _tool(web_search, "web_search", "Search the web. Returns result titles, URLs and snippets.",
                 WebSearchArgs)


class PassageRef(BaseModel):
    """Where one passage of a search observation sits, read back from its header line."""

    document_id: str
    title: str
    start: int
    end: int
    text: str


PASSAGE_HEADER = re.compile(
    r"^\[\d+\] document_id=(?P<document_id>\S+) title=“(?P<title>.*)” start=(?P<start>\d+) end=(?P<end>\d+) "
    r"page=\d+$",
    re.MULTILINE,
)


def parse_passages(observation: str) -> list[PassageRef]:
    """The passages of a search_corpus observation, in rank order (the inverse of format_passages)."""
    headers = list(PASSAGE_HEADER.finditer(observation))
    bounds = [header.start() for header in headers[1:]] + [len(observation)]
    return [
        PassageRef(document_id=h["document_id"], title=h["title"], start=int(h["start"]), end=int(h["end"]),
                   text=observation[h.end() + 1 : bound].rstrip("\n"))
        for h, bound in zip(headers, bounds, strict=False)
    ]


# ---- links between stored documents (the exploration tools) -----------------------------------


class LinkTarget(BaseModel):
    """One outgoing link of a page as written, and the stored document it leads to (None: outside
    the collection)."""

    link: str
    document_id: str | None = None
    title: str | None = None


LINK_LINE = re.compile(r"^\[\d+\] link=(?P<link>\S+) -> (?:document_id=(?P<document_id>\S+) "
                       r"title=“(?P<title>.*)”|not in the collection)$", re.MULTILINE)
PAGE_HEADER = re.compile(r"^document_id=(?P<document_id>\S+) title=“(?P<title>.*?)” characters "
                         r"(?P<start>\d+)-(?P<end>\d+) of \d+")
LINKS_HEADING = "\n\nlinks of document_id="


def resolve_link(source: str, link: str, pages: Sequence[DocumentSummary]) -> DocumentSummary | None:
    """The stored document a link of the document ingested from `source` points to: a URL resolved
    against a URL source, a relative path against the source's folder; else the one document whose
    file name is the link's (pages uploaded one by one lose their folders)."""
    link = unquote(link.split("#")[0].strip())
    if not link:
        return None
    if urlsplit(source).scheme in ("http", "https") or urlsplit(link).scheme:
        target = urljoin(source, link).rstrip("/")
    else:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(source), link))
    exact = [page for page in pages if page.source.rstrip("/") == target]
    if exact:
        return exact[0]
    named = [page for page in pages if posixpath.basename(page.source) == posixpath.basename(target)]
    return named[0] if len(named) == 1 else None


def page_links(document: Document, pages: Sequence[DocumentSummary]) -> list[LinkTarget]:
    """Every outgoing link of a document, in page order, with where it leads."""
    targets = []
    for link in document.links:
        page = resolve_link(document.source, link, pages)
        targets.append(LinkTarget(link=link, document_id=page.id if page else None, title=page.title if page else None))
    return targets


def format_links(document: Document, targets: Sequence[LinkTarget]) -> str:
    """The list_links observation (also ending every follow_link observation)."""
    lines = [f"links of document_id={document.id} title=“{document.title}”:"]
    lines += [f"[{n}] link={t.link} -> " + (f"document_id={t.document_id} title=“{t.title}”" if t.document_id
                                             else "not in the collection") for n, t in enumerate(targets, start=1)]
    if not targets:
        lines.append("(this page has no links)")
    return "\n".join(lines)


def parse_links(observation: str) -> list[LinkTarget]:
    """The links listed in a list_links or follow_link observation (the inverse of format_links)."""
    at = observation.rfind(LINKS_HEADING)
    listing = observation[at:] if at >= 0 else observation
    return [LinkTarget(link=m["link"], document_id=m["document_id"], title=m["title"])
            for m in LINK_LINE.finditer(listing)]


def page_observed(observation: str) -> tuple[str, int, str] | None:
    """(document_id, start offset, text) of the page text a read_document or follow_link
    observation shows; None for other observations (searches, link lists, errors)."""
    header = PAGE_HEADER.match(observation)
    if header is None:
        return None
    first_line, _, body = observation.partition("\n")
    if "(reached from" in first_line:  # a follow_link observation: the page's links follow its text
        body = body[: body.rfind(LINKS_HEADING)]
    return header["document_id"], int(header["start"]), body


class LinksArgs(BaseModel):
    document_id: str = Field(description="The document_id of the page whose links to list.")


class FollowArgs(BaseModel):
    document_id: str = Field(description="The document_id of the page the link is on.")
    link: str = Field(description="The link as list_links shows it (link=...), or the title or document_id of "
                                  "the page it leads to.")


def make_link_tools(workspace: Workspace) -> list[BaseTool]:
    """list_links and follow_link: the collection as a web of pages (links kept at ingestion)."""
    pages: list[DocumentSummary] = []

    def known_pages() -> list[DocumentSummary]:
        if not pages:  # listed once per tool set: tools are made for one agent run or one exploration
            pages.extend(workspace.store.list_documents())
        return pages

    def stored(document_id: str) -> Document:
        document = workspace.store.get_document(document_id)
        if document is None:
            raise ToolException(f"no document with id {document_id!r}; use a document_id from search_corpus")
        return document

    def list_links(document_id: str) -> str:
        document = stored(document_id)
        return format_links(document, page_links(document, known_pages()))

    def follow_link(document_id: str, link: str) -> str:
        document = stored(document_id)
        targets = page_links(document, known_pages())
        wanted = " ".join(link.split())
        chosen = next((t for t in targets if t.link == wanted), None) or next(
            (t for t in targets if t.document_id and wanted in (t.document_id, t.title)), None)
        if chosen is None:
            listing = format_links(document, targets)
            raise ToolException(f"“{document.title}” has no link {link!r}; its links:\n{listing}")
        if chosen.document_id is None:
            raise ToolException(f"the link {chosen.link} of “{document.title}” leads outside the collection")
        target = stored(chosen.document_id)
        start, end = read_range(target, None, None, None)
        return (f"document_id={target.id} title=“{target.title}” characters {start}-{end} of {len(target.text)} "
                f"(reached from document_id={document.id} by link={chosen.link})\n{target.text[start:end]}"
                f"\n\n{format_links(target, page_links(target, known_pages()))}")

    return [
        _tool(list_links, "list_links",
              "List the outgoing links of a stored page: each link as written on the page, and the document_id and "
              "title of the page it leads to (or that it leads outside the collection).", LinksArgs),
        _tool(follow_link, "follow_link",
              f"Follow a link of a stored page: returns the beginning of the page it leads to (at most {READ_LIMIT} "
              "characters, with the range read) and that page's own links.", FollowArgs),
    ]
