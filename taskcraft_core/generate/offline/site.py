"""The offline engine's website steps (METHOD §2), deterministic like the rest of it, and labelled
`engine="offline"` on every task.

Explorer: it searches with terms taken from the pages it read (the name before “ — ” in a link's
text, e.g. “pickle” from “pickle — Python object serialization”) about once every four pages and
opens a result about the term; otherwise it opens the first descriptive link to a page not seen,
tries each filter (select) once, and goes back to remembered links when a page has nothing new.
Task writer: one goal-style template per guideline family over the facts noted on the pages seen:

    Use the site's search to find the page “pickle — Python object serialization” and answer from
    it: the pickle module implements which protocols?

A task names the page to reach and whether to use the search, not the search terms or the clicks.
Executor: `GoalPolicyModel`, a chat model behind the real agent loop, that reads the question back,
reaches each page by a link on the current page or by searching for the page's name (or, when the
task forbids the search, through the section it names) and reads each answer off the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import combinations, islice
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from taskcraft_core.agent.browser import LinkSeen, observed_fields, observed_links, observed_url
from taskcraft_core.generate.explore.records import (
    ExploreAction,
    Fact,
    GoalAnswer,
    GoalCandidate,
    PageSeen,
    SiteExploration,
    SiteView,
)
from taskcraft_core.generate.offline.cloze import (
    NOT_FOUND,
    OfflinePolicyModel,
    cloze_question,
    extract_answer,
    parse_cloze,
    policy_reply,
    quoted,
)
from taskcraft_core.generate.offline.explore import Ask
from taskcraft_core.generate.text import canonical_form, contains_answer, fact_spans, normalise_answer
from taskcraft_core.schema import GUIDELINE_FAMILIES

Call = Callable[[str, dict[str, Any]], str]
SEARCH_EVERY = 4  # pages seen per search the explorer makes
NAV_WORDS = {"index", "modules", "next", "previous", "prev", "home", "up", "top", "back", "search", "contents",
             "about", "help", "copyright"}
REPEATABLE_KINDS = ("year", "date", "quantity", "code", "percent", "money", "name")
TEXT_PART = re.compile(r"^Text: (?P<text>.*?)\nLinks \(", re.DOTALL | re.MULTILINE)
# The templates, as the policy reads them back. Each names the goal (the page to reach, what to
# answer) and the means (search or not), never the search terms or the clicks.
FEATURE = re.compile(r"^Use the site's search to find the page “(?P<name>[^“”]+)” and answer from it: "
                     r"(?P<statement>.+)\?$", re.DOTALL)
RETRIEVE = re.compile(r"^Find the page “(?P<name>[^“”]+)” on this site and answer from it: (?P<statement>.+)\?$",
                      re.DOTALL)
NAVIGATE = re.compile(r"^Without the site's search, browse to the page “(?P<name>[^“”]+)”, which is under "
                      r"“(?P<via>[^“”]+)”, and answer from it: (?P<statement>.+)\?$", re.DOTALL)
COMPOSE = re.compile(r"^Use the site's search to find the page “(?P<name>[^“”]+)” and the page “(?P<next>[^“”]+)” "
                     r"it links to, and answer in order:\n1\. (?P<first>.+)\?\n2\. (?P<second>.+)\?$", re.DOTALL)
REPEAT = re.compile(r"^(?:The start page|The page “(?P<hub>[^“”]+)”) lists “(?P<one>[^“”]+)” and “(?P<two>[^“”]+)”\. "
                    r"Answer from each of the two, in order:\n1\. (?P<first>.+)\?\n2\. (?P<second>.+)\?$", re.DOTALL)


# ---- explorer ---------------------------------------------------------------------------------------


def short_name(text: str) -> str:
    """A link's name before its description: “pickle” from “pickle — Python object serialization”."""
    return re.split(r"\s+[—–-]\s+", text, maxsplit=1)[0].strip()


def search_term(view: SiteView) -> str | None:
    """A term to search for, taken from the pages: the name of a described link (“name — what it
    is”) not visited and not searched yet, newest page first."""
    searched = {normalise_answer(term) for term in view.searches}
    for link in [*view.links, *reversed(view.known_links)]:
        name = short_name(link.text)
        if name != link.text.strip() and 2 < len(name) <= 40 and normalise_answer(name) not in searched:
            return name
    return None


def descriptive(link: LinkSeen) -> bool:
    """A link that names a page's content (not the site's chrome: index, next, a single word)."""
    words = link.text.split()
    return len(words) >= 2 and words[0].lower() not in NAV_WORDS and not link.text.startswith(">>>")


def choose_site_action(view: SiteView) -> ExploreAction | None:
    """Search now and then, open a search result about the term, else the first descriptive link to
    a page not seen, else try a filter, else any new link, else a remembered one; None: nothing new."""
    visited = set(view.visited)
    fresh = [link for link in view.links if link.url not in visited]
    if view.last_action == "type_and_submit" and view.searches:
        last_term = normalise_answer(view.searches[-1])
        about = [link for link in fresh if link.in_main and last_term in normalise_answer(link.text)]
        if about:
            return ExploreAction(tool="open_link", args={"number": about[0].number})
    search = next((f for f in view.fields if f["kind"] == "search"), None)
    term = search_term(view) if search else None
    if search and term and len(view.searches) * SEARCH_EVERY < len(visited):
        return ExploreAction(tool="type_and_submit", args={"field": search["number"], "text": term})
    chosen = next((link for link in fresh if descriptive(link) and link.in_main), None) or \
        next((link for link in fresh if descriptive(link)), None)
    if chosen is not None:
        return ExploreAction(tool="open_link", args={"number": chosen.number})
    filters = {f.name for f in view.functions if f.kind == "filter"}
    select = next((f for f in view.fields if f["kind"] == "select" and f["name"] in filters
                   and len(f["options"]) > 1 and view.last_action != "select_option"), None)
    if select is not None and not any(s.startswith(f"select:{select['name']}") for s in view.searches):
        return ExploreAction(tool="select_option", args={"field": select["number"], "option": select["options"][1]})
    if fresh:
        return ExploreAction(tool="open_link", args={"number": fresh[0].number})
    remembered = next((link for link in view.known_links if descriptive(link)), None) or \
        (view.known_links[0] if view.known_links else None)
    return ExploreAction(tool="open_url", args={"url": remembered.url}) if remembered else None


# ---- task writer -----------------------------------------------------------------------------------


def goal_ask(fact: Fact, title: str) -> Ask | None:
    """The fact's statement as a cloze question words it (the wh-phrase takes a code name's noun
    too, a leading pronoun becomes the subject); None when it gives the answer away."""
    at = fact.span_start - (fact.evidence_start or 0)
    span = next((s for s in fact_spans(fact.evidence, title) if s.start == at), None)
    if span is None:
        return None
    question = cloze_question(title, fact.evidence, span)
    statement = question.removeprefix(f"According to “{quoted(title)}”, ").removesuffix("?")
    return None if contains_answer(fact.answer, statement) else Ask(fact, statement)


@dataclass
class Seen:
    """The pages the explorer read (with their facts as the policy can ask them), each fact asked
    once per guideline."""

    exploration: SiteExploration
    asks: dict[str, list[Ask]] = field(default_factory=dict)
    used: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        for page in self.exploration.memory.pages:
            facts = self.exploration.memory.facts_on(page.document_id)
            self.asks[page.document_id] = [a for f in facts if (a := goal_ask(f, page.title)) is not None]

    def page(self, url: str) -> PageSeen | None:
        return self.exploration.memory.page_at(url)

    def free(self, page: PageSeen, kind: str | None = None) -> Ask | None:
        found = next((a for a in self.asks.get(page.document_id, []) if (page.document_id, a.fact.span_start)
                      not in self.used and kind in (None, a.fact.kind)), None)
        if found is not None:
            self.used.add((page.document_id, found.fact.span_start))
        return found

    def candidate(self, guideline: str, question: str, pages: list[PageSeen], asks: list[Ask],
                  search: bool | None) -> GoalCandidate:
        return GoalCandidate(guideline=guideline, question=question, pages=[p.url or "" for p in pages],
                             answers=[GoalAnswer(answer=canonical_form(a.fact.answer), url=p.url or "",
                                                 evidence=a.fact.evidence) for p, a in zip(pages[-len(asks):], asks,
                                                                                          strict=True)],
                             search=search)

    def linked(self, page: PageSeen) -> Iterator[tuple[LinkSeen, PageSeen]]:
        """The page's links to pages the explorer read, with those pages; only links that name the
        page they lead to (a link to a section, “Format String Syntax”, does not name its page)."""
        for link in page.outlinks:
            target = self.page(link.url)
            if target is not None and target.document_id != page.document_id and descriptive(link) \
                    and names_page(link.text, target):
                yield link, target


def found_by_its_name(term: str, result: LinkSeen) -> bool:
    """Whether a search result is what a search for its own name finds (the term is its name): a
    task then names only the page, and whoever does it finds the term in the page's name."""
    return normalise_answer(term) == normalise_answer(short_name(result.text))


def names_page(text: str, page: PageSeen) -> bool:
    """Whether a link's text names the page: its name (before “ — ”) is in the page's title."""
    return normalise_answer(short_name(text)) in normalise_answer(page.title)


def feature_use(seen: Seen) -> Iterator[GoalCandidate]:
    for search in seen.exploration.memory.searches:
        for link in search.results:
            page = seen.page(link.url)
            if page is not None and found_by_its_name(search.term, link) and names_page(link.text, page) \
                    and (ask := seen.free(page)):
                question = (f"Use the site's search to find the page “{quoted(link.text)}” and answer from it: "
                            f"{ask.statement}?")
                yield seen.candidate("feature_use", question, [page], [ask], search=True)


def information_retrieval(seen: Seen) -> Iterator[GoalCandidate]:
    start = seen.page(seen.exploration.start_url)
    for hub in seen.exploration.memory.pages:
        for link, page in seen.linked(hub):
            if page is not start and (ask := seen.free(page)):
                question = f"Find the page “{quoted(link.text)}” on this site and answer from it: {ask.statement}?"
                yield seen.candidate("information_retrieval", question, [page], [ask], search=None)


def navigation(seen: Seen) -> Iterator[GoalCandidate]:
    memory = seen.exploration.memory
    start = seen.page(seen.exploration.start_url) or (memory.pages[0] if memory.pages else None)
    if start is None:
        return
    for via_link, via in seen.linked(start):
        for link, page in seen.linked(via):
            if page.document_id != start.document_id and (ask := seen.free(page)):
                question = (f"Without the site's search, browse to the page “{quoted(link.text)}”, which is under "
                            f"“{quoted(via_link.text)}”, and answer from it: {ask.statement}?")
                yield seen.candidate("navigation", question, [via, page], [ask], search=False)


def composition(seen: Seen) -> Iterator[GoalCandidate]:
    for search in seen.exploration.memory.searches:
        for result in search.results:
            found = seen.page(result.url)
            if found is None or not found_by_its_name(search.term, result):
                continue
            for link, page in seen.linked(found):
                first = seen.free(found)
                second = seen.free(page) if first else None
                if first and second:
                    question = (f"Use the site's search to find the page “{quoted(result.text)}” and the page "
                                f"“{quoted(link.text)}” it links to, and answer in order:\n1. {first.statement}?\n"
                                f"2. {second.statement}?")
                    yield seen.candidate("composition", question, [found, page], [first, second], search=True)
                    break
                if first:
                    seen.used.discard((found.document_id, first.fact.span_start))


def repetition(seen: Seen) -> Iterator[GoalCandidate]:
    start = seen.page(seen.exploration.start_url)
    for hub in seen.exploration.memory.pages:
        hub_name = "The start page" if hub is start else f"The page “{quoted(hub.link_text or hub.title)}”"
        for (link_a, one), (link_b, two) in combinations(list(seen.linked(hub)), 2):
            for kind in REPEATABLE_KINDS:
                first = seen.free(one, kind)
                second = seen.free(two, kind) if first else None
                if first and second:
                    question = (f"{hub_name} lists “{quoted(link_a.text)}” and “{quoted(link_b.text)}”. Answer "
                                f"from each of the two, in order:\n1. {first.statement}?\n2. {second.statement}?")
                    yield seen.candidate("repetition", question, [hub, one, two], [first, second], search=None)
                    break
                if first:
                    seen.used.discard((one.document_id, first.fact.span_start))


TEMPLATES: dict[str, Callable[[Seen], Iterator[GoalCandidate]]] = {
    "feature_use": feature_use, "information_retrieval": information_retrieval, "navigation": navigation,
    "composition": composition, "repetition": repetition,
}


def write_goal_tasks(exploration: SiteExploration, guideline: str, limit: int) -> list[GoalCandidate]:
    """Up to `limit` candidates of the family: first asking facts the families before it (in
    GUIDELINE_FAMILIES order, each writing `limit`) did not ask, then, if that leaves it short, any."""
    unused = Seen(exploration)
    for earlier in GUIDELINE_FAMILIES[:GUIDELINE_FAMILIES.index(guideline)]:
        for _count, _candidate in zip(range(limit), TEMPLATES[earlier](unused), strict=False):
            pass  # marks the facts it asks as used
    written = list(islice(TEMPLATES[guideline](unused), limit))
    if len(written) < limit:
        questions = {candidate.question for candidate in written}
        more = (c for c in TEMPLATES[guideline](Seen(exploration)) if c.question not in questions)
        written += list(islice(more, limit - len(written)))
    return written


# ---- executor ---------------------------------------------------------------------------------------


def same_name(link_text: str, name: str) -> bool:
    a, b = normalise_answer(link_text), normalise_answer(name)
    return a == b or (bool(a) and normalise_answer(short_name(link_text)) == normalise_answer(short_name(name))
                      and short_name(name) != name)


@dataclass
class Browser:
    """The policy's view of the browser: the last page observation, and the tool caller."""

    call: Call
    page: str = ""

    def do(self, tool: str, args: dict[str, Any]) -> str:
        observation = self.call(tool, args)
        if observed_url(observation):  # an error leaves the browser where it was
            self.page = observation
        return observation

    def open_named(self, name: str) -> bool:
        link = next((link for link in observed_links(self.page) if same_name(link.text, name)), None)
        return link is not None and observed_url(self.do("open_link", {"number": link.number})) is not None

    def search(self, term: str) -> bool:
        box = next((number for number, kind, _name in observed_fields(self.page) if kind == "search"), None)
        return box is not None and observed_url(self.do("type_and_submit", {"field": box, "text": term})) is not None

    def reach(self, name: str, term: str | None, may_search: bool = True) -> bool:
        """Open the named page: a link here, else (when allowed) a search for the term and its result."""
        if self.open_named(name):
            return True
        return may_search and self.search(term or short_name(name)) and self.open_named(name)

    def answer(self, name: str, statement: str) -> str | None:
        """The fact read off the current page, reading its second part when the first lacks it."""
        cloze = parse_cloze(f"According to “{name}”, {statement}?")
        if cloze is None:
            return None
        for part in (None, 2):
            text = self.page if part is None else self.do("read_page", {"part": part})
            found = extract_answer(text_of(text), cloze)
            if found:
                return found
        return None


def text_of(observation: str) -> str:
    found = TEXT_PART.search(observation)
    return found["text"] if found else observation


def solve_goal(question: str, call: Call) -> str:
    """The deterministic executor: read the start page, then carry out the task's template."""
    browser = Browser(call)
    browser.do("read_page", {})
    if m := FEATURE.match(question):
        found = browser.search(short_name(m["name"])) and browser.open_named(m["name"])
        return (browser.answer(m["name"], m["statement"]) if found else None) or NOT_FOUND
    if m := RETRIEVE.match(question):
        return (browser.answer(m["name"], m["statement"]) if browser.reach(m["name"], None) else None) or NOT_FOUND
    if m := NAVIGATE.match(question):
        found = browser.reach(m["via"], None, may_search=False) and browser.open_named(m["name"])
        return (browser.answer(m["name"], m["statement"]) if found else None) or NOT_FOUND
    if m := COMPOSE.match(question):
        first = browser.answer(m["name"], m["first"]) if browser.search(short_name(m["name"])) and \
            browser.open_named(m["name"]) else None
        second = browser.answer(m["next"], m["second"]) if first and browser.open_named(m["next"]) else None
        return f"1. {first or 'unknown'}\n2. {second or 'unknown'}"
    if m := REPEAT.match(question):
        answers = []
        if m["hub"] is None or browser.reach(m["hub"], None):
            for name, statement in ((m["one"], m["first"]), (m["two"], m["second"])):
                answers.append(browser.answer(name, statement) if browser.open_named(name) else None)
                browser.do("go_back", {})
        answers += [None] * (2 - len(answers))
        return "\n".join(f"{n}. {a or 'unknown'}" for n, a in enumerate(answers, start=1))
    return NOT_FOUND


class GoalPolicyModel(OfflinePolicyModel):
    """The offline executor of goal-style website tasks, as a chat model behind the agent loop."""

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=policy_reply(messages, solve_goal))])
