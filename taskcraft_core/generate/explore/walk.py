"""The explorer of METHOD §2: it walks the link graph of a document collection for several turns of
several steps with the reading tools (read_document, list_links, follow_link). The engine chooses
each next link, preferring pages and links not seen yet; after each turn the summariser updates the
memory (pages seen, links followed, facts seen). The result is an `Exploration`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from taskcraft_core.agent.tools import (
    PAGE_HEADER,
    make_link_tools,
    make_tools,
    page_links,
    page_observed,
    parse_links,
)
from taskcraft_core.errors import ModelOutputError, TaskCraftError
from taskcraft_core.generate.context import GenerationContext, check_cancelled
from taskcraft_core.generate.explore.records import (
    Exploration,
    ExploreAction,
    ExploreMemory,
    ExplorerView,
    ExploreStep,
    FrontierLink,
    LinkFollowed,
    ObservedPage,
    PageSeen,
)
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Document, content_id

EXPLORER_TOOLS = ("read_document", "list_links", "follow_link")
LISTED_PAGE = re.compile(r"links of document_id=(?P<document_id>\S+) ")  # a list_links observation's first line

def explore_corpus(workspace_documents: Sequence[Document], ctx: GenerationContext, *,
                   start_document_id: str | None = None, turns: int = 3, steps_per_turn: int = 4) -> Exploration:
    """The explorer's trajectory and memory over the given documents (its environment: links to
    other documents are not followed), from the start page (default: `choose_start_page`)."""
    environment = {document.id: document for document in workspace_documents}
    if not environment:
        raise TaskCraftError("There are no documents to explore.", hint="Ingest documents or load the sample corpus.")
    if turns < 1 or steps_per_turn < 1:
        raise TaskCraftError(f"Exploration needs at least one turn of one step, not {turns} of {steps_per_turn}.",
                             hint="Leave turns and steps_per_turn at their defaults (3 turns of 4 steps).")
    if start_document_id is not None and start_document_id not in environment:
        raise TaskCraftError(f"The start page {start_document_id!r} is not among the documents to explore.",
                             hint="Pick a start page from the run's documents, or leave it out.")
    start = environment[start_document_id] if start_document_id else choose_start_page(workspace_documents, ctx)
    explorer = Explorer(ctx, environment, start)
    usage = Usage()
    try:
        explorer.run(turns, steps_per_turn, usage)
    finally:
        ctx.usage.merge(usage)
    steps = explorer.steps
    return Exploration(
        id=content_id("exploration", start.id, *(f"{s.tool} {json.dumps(s.args, sort_keys=True)}" for s in steps)),
        start_document_id=start.id, environment=sorted(environment), steps=steps, memory=explorer.memory,
        engine=ctx.engine.name, model=ctx.engine.model, turns=turns, steps_per_turn=steps_per_turn,
        model_calls=usage.calls, tokens=usage.tokens, problems=explorer.problems)


def link_graph(documents: Sequence[Document], ctx: GenerationContext) -> dict[str, list[str]]:
    """Each document's links to the other documents of the set, in link order."""
    inside = {document.id for document in documents}
    known = [page for page in ctx.workspace.store.list_documents() if page.id in inside]
    return {d.id: list(dict.fromkeys(t.document_id for t in page_links(d, known)
                                     if t.document_id in inside and t.document_id != d.id)) for d in documents}


def reachable(graph: dict[str, list[str]], start: str) -> list[str]:
    """Pages reachable from `start` by links (itself included), breadth first."""
    order, position = [start], 0
    while position < len(order):
        order += [target for target in graph.get(order[position], []) if target not in order]
        position += 1
    return order


def choose_start_page(documents: Sequence[Document], ctx: GenerationContext) -> Document:
    """The page from which most pages are reachable; then the one with most links; then by title."""
    graph = link_graph(documents, ctx)
    return min(documents, key=lambda d: (-len(reachable(graph, d.id)), -len(graph[d.id]), d.title, d.id))


class Explorer:
    """One exploration in progress: the fixed opening (read the start page, list its links), then
    the engine's choices, each executed with the real tools and recorded as a step."""

    def __init__(self, ctx: GenerationContext, environment: dict[str, Document], start: Document) -> None:
        workspace = ctx.workspace
        tools = [*make_tools(workspace, allow_fetch=False), *make_link_tools(workspace)]
        self.tools = {tool.name: tool for tool in tools if tool.name in EXPLORER_TOOLS}
        self.ctx, self.environment = ctx, environment
        self.opening = [ExploreAction(tool="read_document", args={"document_id": start.id}),
                        ExploreAction(tool="list_links", args={"document_id": start.id})]
        self.steps: list[ExploreStep] = []
        self.memory = ExploreMemory()
        self.problems: list[str] = []
        self.current: str | None = None

    def run(self, turns: int, steps_per_turn: int, usage: Usage) -> None:
        budget = turns * steps_per_turn
        for turn in range(1, turns + 1):
            new_pages: list[ObservedPage] = []
            finished = False
            for _ in range(steps_per_turn):
                check_cancelled(self.ctx)
                try:
                    action = self.next_action(budget - len(self.steps), usage)
                except ModelOutputError as malformed:  # this turn ends; the next one chooses again
                    self.problems.append(f"turn {turn}: the explorer's output was malformed: {malformed.message}")
                    break
                if action is None:
                    finished = True
                    break
                self.take(action, turn, new_pages)
            self.summarise(turn, new_pages, usage)
            if finished:
                return

    def next_action(self, steps_left: int, usage: Usage) -> ExploreAction | None:
        if self.opening:
            return self.opening.pop(0)
        return self.ctx.engine.choose_explore_action(self.view(steps_left), usage)

    def view(self, steps_left: int) -> ExplorerView:
        followed = {(f.from_id, f.link) for f in self.memory.followed}
        seen = {page.document_id for page in self.memory.pages}
        frontier = [
            FrontierLink(from_id=page.document_id, from_title=page.title, link=t.link, to_id=t.document_id,
                         to_title=t.title or "", to_seen=t.document_id in seen)
            for page in self.memory.pages for t in page.links or []
            if t.document_id in self.environment and t.document_id != page.document_id
            and (page.document_id, t.link) not in followed
        ]
        current = self.memory.page(self.current) if self.current else None
        return ExplorerView(current_id=self.current, current_title=current.title if current else None,
                            frontier=frontier, summary=self.summary(), pages_seen=[p.title for p in self.memory.pages],
                            steps_left=steps_left)

    def take(self, action: ExploreAction, turn: int, new_pages: list[ObservedPage]) -> None:
        tool = self.tools.get(action.tool)
        observation = str(tool.invoke(action.args)) if tool else f"Error: the explorer has no tool {action.tool!r}"
        shown = page_observed(observation)
        reached = shown[0] if shown else None
        self.steps.append(ExploreStep(position=len(self.steps), turn=turn, state=self.current, tool=action.tool,
                                      args=action.args, observation=observation, reached=reached))
        if shown is None:
            self.note_links(action, observation)
            return
        reached_id, start, text = shown
        self.current = reached_id
        page = self.memory.page(reached_id)
        if page is None:
            header = PAGE_HEADER.match(observation)
            title = header["title"] if header else reached_id
            page = PageSeen(document_id=reached_id, title=title, first_step=len(self.steps) - 1)
            self.memory.pages.append(page)
            new_pages.append(ObservedPage(document_id=reached_id, title=title, start=start, text=text))
        if action.tool == "follow_link":
            self.memory.followed.append(LinkFollowed(from_id=action.args["document_id"], link=action.args["link"],
                                                     to_id=reached_id))
            if page.links is None:  # a follow_link observation ends with the reached page's links
                page.links = parse_links(observation)

    def note_links(self, action: ExploreAction, observation: str) -> None:
        """A successful list_links observation gives its page's links."""
        page = self.memory.page(str(action.args.get("document_id")))
        if action.tool == "list_links" and page is not None and LISTED_PAGE.match(observation):
            page.links = parse_links(observation)

    def summary(self) -> str:
        return self.memory.summaries[-1] if self.memory.summaries else ""

    def summarise(self, turn: int, new_pages: list[ObservedPage], usage: Usage) -> None:
        try:
            summary = self.ctx.engine.summarise_exploration(self.summary(), new_pages, usage)
        except ModelOutputError as malformed:  # the pages stay seen; only this turn's facts are lost
            self.problems.append(f"turn {turn}: the summariser's output was malformed: {malformed.message}")
            return
        self.memory.facts += summary.facts
        self.memory.summaries.append(summary.summary)
