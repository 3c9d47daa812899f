"""The tools a solving agent gets: search the corpus, read a stored document, and (when allowed)
fetch a URL or search the web.

Each tool's docstring is what the model reads, so it says what to pass and what comes back.
Bad arguments (an unknown document id, an empty range, a refused URL) raise ToolException, which
LangChain turns into an error observation: the agent sees what was wrong and can try again.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field, ValidationError

from taskcraft_core.corpus import load_document
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.index import Passage
from taskcraft_core.schema import Document
from taskcraft_core.web import CONTENT_TYPES, fetch_url
from taskcraft_core.workspace import Workspace

MAX_PASSAGES = 10
READ_LIMIT = 6000  # characters one read_document call returns at most
FETCH_LIMIT = 6000

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


def make_tools(workspace: Workspace, *, allow_fetch: bool, web_search: WebSearch | None = None) -> list[BaseTool]:
    """The agent's tools over one workspace; fetch_url only when allowed, web_search only with a provider."""
    tools = [_search_tool(workspace), _read_tool(workspace)]
    if allow_fetch:
        tools.append(_fetch_tool(workspace))
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
            document = load_document(url, resource.data, CONTENT_TYPES[resource.content_type], resource.final_url)
        except TaskCraftError as refused:
            raise ToolException(str(refused)) from refused
        return f"url={resource.final_url} title=“{document.title}”\n{document.text[:FETCH_LIMIT]}"

    return _tool(
        fetch, "fetch_url",
        f"Download a web page or PDF and return its text (at most {FETCH_LIMIT} characters).",
        FetchArgs,
    )


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
        for h, bound in zip(headers, bounds)
    ]
