"""The offline engine's exploration steps (METHOD §2), deterministic like the rest of it.

Explorer: breadth first over the links seen so far, links to new pages before links to pages seen.
Summariser: the facts of each new page are the fact spans (text.py) of its observed sentences.
Task writer: one template per guideline family; each asks facts of the pages the explorer reached
along links it saw, in a wording the route-following policy reads back:

    Start at the page “The Halvard Observatory”.
    Follow the link from “The Halvard Observatory” to “RV Storm Petrel”.
    Then answer from “RV Storm Petrel”: she entered service on what date?

Executor: `ExplorePolicyModel` finds the start page with search_corpus, lists its links, follows
them one by one with follow_link, and reads each answer off the page it is asked from.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from taskcraft_core.agent.tools import page_observed, parse_links, parse_passages
from taskcraft_core.generate.explore.records import (
    CandidateAnswer,
    Exploration,
    ExploreAction,
    ExploreCandidate,
    ExplorerView,
    Fact,
    Move,
    ObservedPage,
    TurnSummary,
)
from taskcraft_core.generate.offline.cloze import (
    NOT_FOUND,
    OfflinePolicyModel,
    extract_answer,
    parse_cloze,
    policy_reply,
    quoted,
    solve,
    statement_with_blank,
    wh_phrase,
)
from taskcraft_core.generate.text import canonical_form, contains_answer, fact_spans, normalise_answer, sentences

Call = Callable[[str, dict[str, Any]], str]
# Kinds of fact a repetition task may ask twice, most precise first.
REPEATABLE_KINDS = ("date", "year", "quantity", "money", "percent", "name")
START = re.compile(r"^Start at the page “(?P<title>[^“”]+)”\.$", re.MULTILINE)
MOVE = re.compile(r"^Follow the link from “(?P<source>[^“”]+)” to “(?P<target>[^“”]+)”\.$",
                  re.MULTILINE)
ASK_ONE = re.compile(r"^Then answer from “(?P<title>[^“”]+)”: (?P<statement>.+)\?$", re.MULTILINE)
ASK_NUMBERED = re.compile(r"^\d+\. From “(?P<title>[^“”]+)”: (?P<statement>.+)\?$", re.MULTILINE)
ASK_LEADS = {2: "Then answer both, in order:"}


# ---- explorer and summariser --------------------------------------------------------------------


def next_action(view: ExplorerView) -> ExploreAction | None:
    """The first link (in discovery order) to a page not seen yet, else the first link not followed
    yet; None when every link is covered."""
    if not view.frontier:
        return None
    chosen = next((f for f in view.frontier if not f.to_seen), view.frontier[0])
    return ExploreAction(tool="follow_link", args={"document_id": chosen.from_id, "link": chosen.link})


def summarise(previous: str, pages: Sequence[ObservedPage], limit: int) -> TurnSummary:
    """Up to `limit` fact spans of each new page, and one more summary sentence."""
    if not pages:
        return TurnSummary(summary=previous)
    facts = [fact for page in pages for fact in page_facts(page)[:limit]]
    reached = ", ".join(f"“{page.title}”" for page in pages)
    return TurnSummary(summary=f"{previous} Reached {reached}; {len(facts)} facts noted.".strip(), facts=facts)


def page_facts(page: ObservedPage) -> list[Fact]:
    facts = []
    for sentence in sentences(page.text, offset=page.start):
        for span in fact_spans(sentence.text, page.title):
            blanked = quoted(sentence.text[: span.start] + "___" + sentence.text[span.end:])
            facts.append(
                Fact(
                    document_id=page.document_id,
                    answer=span.text,
                    relation=f"the {span.kind} in “{blanked}”",
                    kind=span.kind,
                    evidence=sentence.text,
                    span_start=sentence.start + span.start,
                    span_end=sentence.start + span.end,
                    evidence_start=sentence.start,
                )
            )
    return facts


# ---- task writer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """A fact as the policy can be asked it: the statement with a wh-phrase where the fact was."""

    fact: Fact
    statement: str


def ask_for(fact: Fact, title: str) -> Ask | None:
    """The fact's question statement; None when it would give the answer away."""
    at = fact.span_start - (fact.evidence_start or 0)
    span = next((s for s in fact_spans(fact.evidence, title) if s.start == at), None)
    if span is None:
        return None
    statement = statement_with_blank(quoted(fact.evidence), span.start, span.end, lambda left: wh_phrase(span, left))
    return None if contains_answer(fact.answer, statement) else Ask(fact, statement)


@dataclass
class Site:
    """The part of the collection the explorer saw: pages with a unique title and observed text, the
    links between them, and the askable facts of each page (each used once per guideline)."""

    exploration: Exploration
    titles: dict[str, str] = field(default_factory=dict)
    asks: dict[str, list[Ask]] = field(default_factory=dict)
    used: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        memory = self.exploration.memory
        counts = Counter(normalise_answer(page.title) for page in memory.pages)  # a route names pages by title
        for page in memory.pages:
            if counts[normalise_answer(page.title)] == 1 and self.exploration.observed_text(page.document_id):
                self.titles[page.document_id] = quoted(page.title)
                self.asks[page.document_id] = [a for f in memory.facts_on(page.document_id)
                                               if (a := ask_for(f, page.title)) is not None]

    def targets(self, page_id: str) -> list[str]:
        """Pages of the site this page links to, in link order."""
        page = self.exploration.memory.page(page_id)
        if page is None:
            return []
        found = [t.document_id for t in (page.links or []) if t.document_id in self.titles and t.document_id != page_id]
        return list(dict.fromkeys(found))

    def edges(self) -> Iterator[tuple[str, str]]:
        for page_id in self.titles:
            for target in self.targets(page_id):
                yield page_id, target

    def free(self, page_id: str, kind: str | None = None, avoid: Sequence[Ask] = ()) -> Ask | None:
        """The first unused fact of a page (of a kind), compatible with the facts asked beside it."""
        return next((a for a in self.asks.get(page_id, []) if (page_id, a.fact.span_start) not in self.used
                     and kind in (None, a.fact.kind) and all(compatible(a, b) for b in avoid)), None)

    def candidate(self, guideline: str, moves: list[Move], asks: list[Ask]) -> ExploreCandidate:
        self.used.update((a.fact.document_id, a.fact.span_start) for a in asks)
        start = moves[0].from_id
        return ExploreCandidate(
            guideline=guideline, question=route_question(self.titles, start, moves, asks), start_id=start,
            moves=moves, answers=[CandidateAnswer(answer=canonical_form(a.fact.answer), document_id=a.fact.document_id,
                                                  evidence=a.fact.evidence, span_start=a.fact.span_start,
                                                  span_end=a.fact.span_end) for a in asks])


def compatible(a: Ask, b: Ask) -> bool:
    """Two facts can be asked together when neither statement gives away the other's answer."""
    return a.fact.span_start != b.fact.span_start and not (
        contains_answer(a.fact.answer, b.statement) or contains_answer(b.fact.answer, a.statement))


def information_retrieval(site: Site) -> Iterator[ExploreCandidate]:
    for source, target in site.edges():
        if ask := site.free(target):
            yield site.candidate("information_retrieval", [Move(from_id=source, to_id=target)], [ask])


def navigation(site: Site) -> Iterator[ExploreCandidate]:
    for first, second in site.edges():
        for third in site.targets(second):
            if third != first and (ask := site.free(third)):
                moves = [Move(from_id=first, to_id=second), Move(from_id=second, to_id=third)]
                yield site.candidate("navigation", moves, [ask])


def composition(site: Site) -> Iterator[ExploreCandidate]:
    for source, target in site.edges():
        here = site.free(source)
        there = site.free(target, avoid=[here]) if here else None
        if here and there:
            yield site.candidate("composition", [Move(from_id=source, to_id=target)], [here, there])


def repetition(site: Site) -> Iterator[ExploreCandidate]:
    for source in list(site.titles):
        for first, second in combinations(site.targets(source), 2):
            for kind in REPEATABLE_KINDS:
                one = site.free(first, kind)
                other = site.free(second, kind, avoid=[one]) if one else None
                if one and other:
                    yield site.candidate("repetition", [Move(from_id=source, to_id=first),
                                                        Move(from_id=source, to_id=second)], [one, other])
                    break


TEMPLATES: dict[str, Callable[[Site], Iterator[ExploreCandidate]]] = {
    "information_retrieval": information_retrieval, "navigation": navigation, "composition": composition,
    "repetition": repetition,
}


def write_tasks(exploration: Exploration, guideline: str, limit: int) -> list[ExploreCandidate]:
    site, written = Site(exploration), list[ExploreCandidate]()
    for candidate in TEMPLATES[guideline](site):
        if len(written) == limit:
            break
        written.append(candidate)
    return written


def route_question(titles: dict[str, str], start: str, moves: Sequence[Move], asks: Sequence[Ask]) -> str:
    lines = [f"Start at the page “{titles[start]}”."]
    lines += [f"Follow the link from “{titles[m.from_id]}” to “{titles[m.to_id]}”." for m in moves]
    if len(asks) == 1:
        return "\n".join([*lines, f"Then answer from “{titles[asks[0].fact.document_id]}”: {asks[0].statement}?"])
    lines.append(ASK_LEADS.get(len(asks), f"Then answer all {len(asks)}, in order:"))
    lines += [f"{n}. From “{titles[a.fact.document_id]}”: {a.statement}?" for n, a in enumerate(asks, start=1)]
    return "\n".join(lines)


# ---- executor -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A route question read back: the start title, the links to follow, the (title, statement) asks."""

    start: str
    moves: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    numbered: bool


def parse_route(question: str) -> Route | None:
    start = START.search(question)
    if start is None:
        return None
    single = ASK_ONE.search(question)
    asks = [(single["title"], single["statement"])] if single else \
        [(m["title"], m["statement"]) for m in ASK_NUMBERED.finditer(question)]
    if not asks:
        return None
    return Route(start["title"], [(m["source"], m["target"]) for m in MOVE.finditer(question)], asks, single is None)


def find_page(title: str, call: Call) -> str | None:
    passages = parse_passages(call("search_corpus", {"query": title, "k": 5}))
    return next((p.document_id for p in passages if normalise_answer(p.title) == normalise_answer(title)), None)


def solve_route(route: Route, call: Call) -> str:
    """Walk the route with list_links and follow_link, then read each answer off its page."""
    start = find_page(route.start, call)
    if start is None:
        return NOT_FOUND
    ids, texts, links = {normalise_answer(route.start): start}, {}, {}
    for source, target in route.moves:
        source_id = ids.get(normalise_answer(source))
        if source_id is None:
            return NOT_FOUND
        if source_id not in links:
            links[source_id] = parse_links(call("list_links", {"document_id": source_id}))
        link = next((t for t in links[source_id]
                     if t.document_id and normalise_answer(t.title or "") == normalise_answer(target)), None)
        if link is None or link.document_id is None:
            return NOT_FOUND
        observation = call("follow_link", {"document_id": source_id, "link": link.link})
        ids[normalise_answer(target)], links[link.document_id] = link.document_id, parse_links(observation)
        if seen := page_observed(observation):
            texts[link.document_id] = seen[2]
    answers = [ask_page(title, statement, ids, texts, call) for title, statement in route.asks]
    if not route.numbered:
        return answers[0] or NOT_FOUND
    return "\n".join(f"{n}. {answer or 'unknown'}" for n, answer in enumerate(answers, start=1))


def ask_page(title: str, statement: str, ids: dict[str, str], texts: dict[str, str], call: Call) -> str | None:
    page_id = ids.get(normalise_answer(title))
    cloze = parse_cloze(f"According to “{title}”, {statement}?")
    if page_id is None or cloze is None:
        return None
    if page_id not in texts:  # a page asked about but only passed through: read it
        seen = page_observed(call("read_document", {"document_id": page_id}))
        texts[page_id] = seen[2] if seen else ""
    return extract_answer(texts[page_id], cloze)


def solve_task(question: str, call: Call) -> str:
    route = parse_route(question)
    return solve(question, call) if route is None else solve_route(route, call)


class ExplorePolicyModel(OfflinePolicyModel):
    """The offline policy that also follows routes: route questions by links, others as before."""

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=policy_reply(messages, solve_task))])

