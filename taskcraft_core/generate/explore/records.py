"""The records of exploration (METHOD §2): what the explorer did and saw, what it remembers, what the
engine is shown to choose its next move, and the task candidates written from an exploration.

Two environments share them. In a linked document collection a page (stored document) is a state,
a link a transition, and actions are calls of the reading tools (read_document, list_links,
follow_link). On a live website (site.py) a state is a URL with a content fingerprint, actions are
the browser tools (agent/browser.py), and the memory also keeps the functions found (search box,
filter, form, pagination) and the searches made; every page read is stored as a document of the run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from taskcraft_core.agent.browser import LinkSeen
from taskcraft_core.agent.tools import LinkTarget, page_observed
from taskcraft_core.schema import GUIDELINE_FAMILIES

# The guideline families a linked document collection supports: AutoPlay's, without feature use (a
# collection has no features but its links); a live website supports all of GUIDELINE_FAMILIES.
GUIDELINES: tuple[str, ...] = tuple(g for g in GUIDELINE_FAMILIES if g != "feature_use")


class ExploreStep(BaseModel):
    """One transition: the page the explorer was on, the tool call it made, what came back."""

    position: int
    turn: int
    state: str | None = Field(description="The page (document id) the explorer was on; None before the first.")
    tool: str
    args: dict[str, Any]
    observation: str
    reached: str | None = Field(None, description="The page whose text the observation shows, if any.")


class PageSeen(BaseModel):
    """A page the explorer reached, with the links it found on it (None until they were listed)."""

    document_id: str
    title: str
    first_step: int
    links: list[LinkTarget] | None = None
    url: str | None = Field(None, description="On a website: the page's URL.")
    fingerprint: str | None = Field(None, description="On a website: the fingerprint of its main text.")
    outlinks: list[LinkSeen] = Field(default_factory=list, description="On a website: the page's links.")
    link_text: str = Field("", description="On a website: the text of the link the explorer followed to it.")


class Fact(BaseModel):
    """A verifiable fact the summariser noted on a page, located in the page's text."""

    document_id: str
    answer: str
    relation: str
    kind: str = Field("", description="date, year, quantity, money, percent or name (offline facts).")
    evidence: str
    span_start: int
    span_end: int
    evidence_start: int | None = None


class LinkFollowed(BaseModel):
    """A transition the explorer took."""

    from_id: str
    link: str
    to_id: str


class FunctionFound(BaseModel):
    """A function of a website the explorer discovered (a search box, a filter, a form, pagination)."""

    kind: Literal["search", "filter", "form", "pagination"]
    url: str = Field(description="The page it was found on.")
    name: str = Field(description="The field's name, or the pagination link's text.")
    label: str = ""
    first_step: int


class SearchMade(BaseModel):
    """A search the explorer ran: the term typed, where, and the links of the results page."""

    term: str
    from_url: str
    results_url: str
    results: list[LinkSeen] = Field(default_factory=list)
    step: int


class ExploreMemory(BaseModel):
    """What the summariser keeps between turns: pages seen, links covered, facts seen, summaries;
    on a website also the functions found and the searches made."""

    pages: list[PageSeen] = Field(default_factory=list)
    followed: list[LinkFollowed] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    summaries: list[str] = Field(default_factory=list)
    functions: list[FunctionFound] = Field(default_factory=list)
    searches: list[SearchMade] = Field(default_factory=list)

    def page(self, document_id: str) -> PageSeen | None:
        return next((p for p in self.pages if p.document_id == document_id), None)

    def page_at(self, url: str) -> PageSeen | None:
        return next((p for p in self.pages if p.url == url), None)

    def facts_on(self, document_id: str) -> list[Fact]:
        return [f for f in self.facts if f.document_id == document_id]


class Exploration(BaseModel):
    """The explorer's trajectory (ordered steps) and its memory."""

    id: str
    start_document_id: str
    environment: list[str] = Field(description="The document ids the explorer could move between.")
    steps: list[ExploreStep] = Field(default_factory=list)
    memory: ExploreMemory = Field(default_factory=ExploreMemory)
    engine: str
    model: str
    turns: int
    steps_per_turn: int
    model_calls: int = 0
    tokens: int = 0
    problems: list[str] = Field(default_factory=list, description="Malformed explorer or summariser outputs.")

    def observed_text(self, document_id: str) -> tuple[int, str] | None:
        """(start offset, text) of the first observation that showed this page's text."""
        for step in self.steps:
            seen = page_observed(step.observation) if step.reached == document_id else None
            if seen is not None:
                return seen[1], seen[2]
        return None

    def linked(self, from_id: str, to_id: str) -> bool:
        """Whether the explorer saw a link from one page to the other."""
        page = self.memory.page(from_id)
        return page is not None and any(t.document_id == to_id for t in page.links or [])


class FrontierLink(BaseModel):
    """A link the explorer could follow next."""

    from_id: str
    from_title: str
    link: str
    to_id: str
    to_title: str
    to_seen: bool


class ExplorerView(BaseModel):
    """What the engine is shown to choose the next action: where the explorer is, the links it has
    not followed yet (in discovery order), its memory summary and how many steps remain."""

    current_id: str | None
    current_title: str | None
    frontier: list[FrontierLink]
    summary: str
    pages_seen: list[str]
    steps_left: int


class ExploreAction(BaseModel):
    """A tool call the explorer makes."""

    tool: str
    args: dict[str, Any]


class TurnSummary(BaseModel):
    """The summariser's output for one turn: a summary line and the facts of the pages new in it."""

    summary: str
    facts: list[Fact] = Field(default_factory=list)


class ObservedPage(BaseModel):
    """A page's text as an observation showed it, with its offset in the document."""

    document_id: str
    title: str
    start: int
    text: str


class CandidateAnswer(BaseModel):
    """One asked-for answer, the page it is on, and (when known) where it is written there."""

    answer: str
    document_id: str
    evidence: str = ""
    span_start: int | None = None
    span_end: int | None = None


class Move(BaseModel):
    """One link of a task's route: go from a page to a page it links to."""

    from_id: str
    to_id: str


class ExploreCandidate(BaseModel):
    """A task written from an exploration: the question, the route it asks to follow, the answers.
    `problem` is set when the writer's output for this candidate was unusable."""

    guideline: str
    question: str
    start_id: str
    moves: list[Move]
    answers: list[CandidateAnswer]
    problem: str | None = None

    @property
    def required_pages(self) -> list[str]:
        """The pages the navigation requires, in the order they are reached."""
        return list(dict.fromkeys([self.start_id, *(m.to_id for m in self.moves)]))


def locate_in_page(answer: str, evidence: str, page: ObservedPage) -> tuple[int, int] | None:
    """Document offsets of an answer written in an observed page text, preferably inside its
    evidence sentence; None when the page text does not contain it (the answer was not seen)."""
    answer, evidence = answer.strip(), " ".join(evidence.split())
    if not answer:
        return None
    evidence_at = page.text.find(evidence) if evidence else -1
    at = page.text.find(answer, evidence_at) if evidence_at >= 0 else -1
    if at < 0 or at > evidence_at + len(evidence):
        at = page.text.find(answer)
    return None if at < 0 else (page.start + at, page.start + at + len(answer))


# ---- a live website ------------------------------------------------------------------------------


class SiteView(BaseModel):
    """What the engine is shown to choose the website explorer's next action: the current page as
    the tools show it, the links and fields on it, what is remembered, and what is left."""

    current: str = Field(description="The current page's observation (title, URL, text excerpt, links, fields).")
    url: str
    links: list[LinkSeen]
    fields: list[dict[str, Any]] = Field(description="The page's fields: number, kind, name, label, options.")
    visited: list[str] = Field(description="URLs of the pages seen, in order.")
    known_links: list[LinkSeen] = Field(default_factory=list, description="Links seen on earlier pages to pages "
                                        "not visited yet (open_url reaches them).")
    functions: list[FunctionFound] = Field(default_factory=list)
    searches: list[str] = Field(default_factory=list, description="Terms searched so far.")
    summary: str = ""
    last_action: str | None = None
    steps_left: int


class SiteExploration(BaseModel):
    """A website exploration: where it started, its stored steps (ExplorationStep rows of the run),
    its memory, and why it stopped."""

    run_id: str
    start_url: str
    engine: str
    model: str
    steps: int = Field(0, description="Steps taken (stored as exploration_steps rows).")
    interactions: int = Field(0, description="Steps that used a page function (type_and_submit, select_option).")
    memory: ExploreMemory = Field(default_factory=ExploreMemory)
    texts: dict[str, str] = Field(default_factory=dict, description="Document id -> the page's text as the browser "
                                  "showed it (what the explorer read; facts are located in it).")
    problems: list[str] = Field(default_factory=list, description="Malformed engine outputs, failed steps.")
    stopped: str = Field("", description="Why it stopped: budget, nothing left, cancelled.")
    refused: list[str] = Field(default_factory=list, description="Requests refused (URL: reason).")
    failed_urls: list[str] = Field(default_factory=list,
                                   description="Pages that could not be loaded (not tried again).")
    page_loads: int = Field(0, description="Page loads of the run so far, the explorer's and the executor's.")


class GoalAnswer(BaseModel):
    """One asked-for answer and the page (URL) it is read on."""

    answer: str
    url: str
    evidence: str = ""


class GoalCandidate(BaseModel):
    """A goal-style task written from a website exploration: what to achieve (not the route), the
    pages an executor must reach, whether it must use (or avoid) the site's search, the answers.
    `problem` is set when the writer's output for this candidate was unusable."""

    guideline: str
    question: str
    pages: list[str] = Field(description="URLs the executor must reach, in order.")
    answers: list[GoalAnswer]
    search: bool | None = Field(None, description="True: the executor must use the site's search; False: it must "
                                "not; None: either.")
    problem: str | None = None
