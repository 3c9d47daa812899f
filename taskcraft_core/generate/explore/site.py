"""The website explorer (METHOD §2, after AutoPlay): from a start URL it drives a headless browser
with the browser tools for turns of several steps, choosing each action with the engine (open a
link, go back, read, search, select) and preferring states and functions it has not seen. Its memory
(shared records with the document explorer, walk.py) keeps the states seen (URL + content
fingerprint), the functions found (search box, filter, form, pagination), the searches made and the
facts noted; the summariser updates it after each turn. Every page read is stored as a document of
the run; every step is stored at once as an ExplorationStep row with a small screenshot, so a cancel
or a crash keeps what was found, and a resume continues from the stored steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from taskcraft_core.agent.browser import BROWSER_TOOLS, BrowserSession, PageView, observed_fields, observed_links
from taskcraft_core.errors import IngestError, ModelCallFailed, ModelOutputError, ModelUnavailableError, TaskCraftError
from taskcraft_core.generate.context import GenerationCancelled, GenerationContext, check_cancelled
from taskcraft_core.generate.explore.records import (
    ExploreAction,
    ExploreMemory,
    FunctionFound,
    ObservedPage,
    PageSeen,
    SearchMade,
    SiteExploration,
    SiteView,
)
from taskcraft_core.ingest.pipeline import ingest_page, rename_documents
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import ExplorationStep

FIELD_FUNCTIONS = {"search": "search", "select": "filter", "text": "form"}

EXPLORER_ACTIONS = (*BROWSER_TOOLS, "open_url")  # open_url: back to a page remembered (the explorer only)
INTERACTIONS = ("type_and_submit", "select_option")
SUMMARY_CHARS = 3000  # of each new page's text the summariser reads (what an executor sees in two reads)
OBSERVATION_CHARS = 4000  # of each observation kept on its step
PAGINATION = re.compile(r"^(?:next|previous|prev|older|newer|more|[«»‹›]|\d{1,3}|page \d+)\b", re.IGNORECASE)
MAX_KNOWN_LINKS = 40
MAX_IDLE_TURNS = 3  # turns in a row without a step before the explorer is taken to be stuck


def explore_site(start_url: str, ctx: GenerationContext, session: BrowserSession, *, steps_per_turn: int = 5,
                 resumed: SiteExploration | None = None) -> SiteExploration:
    """Explore from the start URL in an open browser session until the session's budget is spent,
    nothing is left, or the run is cancelled (then what was found is kept: `stopped` says which).
    With `resumed` (a stopped exploration rebuilt from its stored steps) it goes on from there."""
    if ctx.run_id is None:
        raise TaskCraftError("a website exploration belongs to a run", hint="create the run first")
    if steps_per_turn < 1:
        raise TaskCraftError(f"an exploration turn needs at least one step, not {steps_per_turn}")
    exploration = resumed or SiteExploration(run_id=ctx.run_id, start_url=start_url, engine=ctx.engine.name,
                                             model=ctx.engine.model)
    explorer = SiteExplorer(ctx, session, exploration)
    usage = Usage()
    try:
        explorer.run(steps_per_turn, usage)
    except GenerationCancelled:
        exploration.stopped = "cancelled"
    finally:
        ctx.usage.merge(usage)
        exploration.refused = [f"{r.url}: {r.reason}" for r in session.refused]
        exploration.page_loads += session.page_loads
    if exploration.memory.pages:
        rename_documents(ctx.workspace)  # a site's name on every title goes, as after any ingest
    return exploration


def rebuild_exploration(ctx: GenerationContext, start_url: str) -> SiteExploration:
    """A stopped exploration's memory, from its stored steps and pages: the states, searches and
    functions the steps show; the facts are noted again by the summariser over the pages' text."""
    if ctx.run_id is None:
        raise TaskCraftError("a website exploration belongs to a run", hint="create the run first")
    store = ctx.workspace.store
    steps = store.exploration_steps(ctx.run_id, screenshots=False)
    exploration = SiteExploration(run_id=ctx.run_id, start_url=start_url, engine=ctx.engine.name,
                                  model=ctx.engine.model, steps=len(steps),
                                  interactions=sum(s.action in INTERACTIONS and not s.error for s in steps))
    memory, pages, previous = exploration.memory, list[ObservedPage](), start_url
    for step in (s for s in steps if not s.error):
        links = observed_links(step.observation)
        if step.action == "type_and_submit":
            memory.searches.append(SearchMade(term=str(step.args.get("text", "")), from_url=previous,
                                              results_url=step.url, results=links[:15], step=step.position))
        document = store.get_document(step.document_id) if step.document_id else None
        if document is not None and memory.page(document.id) is None:
            memory.pages.append(PageSeen(document_id=document.id, title=step.title, first_step=step.position,
                                         url=step.url, fingerprint=step.fingerprint, outlinks=links))
            exploration.texts[document.id] = document.text
            pages.append(ObservedPage(document_id=document.id, title=step.title, start=0,
                                      text=document.text[:SUMMARY_CHARS]))
        remember_functions(memory, step.url, step.position,
                           [(kind, name, "") for _number, kind, name in observed_fields(step.observation)],
                           [link.text for link in links])
        previous = step.url
    summarise_turn(ctx, exploration, 0, pages, ctx.usage)
    return exploration


def remember_functions(memory: ExploreMemory, url: str, step: int, fields: Sequence[tuple[str, str, str]],
                       link_texts: Sequence[str]) -> list[FunctionFound]:
    """Add the functions a page shows that the memory does not know yet (its fields as kind, name and
    label; a pagination link) and return them: the explorer after each step, a resume from stored steps."""
    known = {(f.kind, f.name) for f in memory.functions}
    found = [FunctionFound.model_validate({"kind": FIELD_FUNCTIONS[kind], "url": url, "name": name, "label": label,
                                           "first_step": step}) for kind, name, label in fields]
    found += [FunctionFound(kind="pagination", url=url, name=text, first_step=step)
              for text in link_texts if PAGINATION.match(text)][:1]
    new = []
    for function in found:
        if (function.kind, function.name) not in known:
            known.add((function.kind, function.name))
            new.append(function)
    memory.functions += new
    return new


def summarise_turn(ctx: GenerationContext, exploration: SiteExploration, turn: int, pages: list[ObservedPage],
                   usage: Usage) -> None:
    """The summariser's update of the memory after a turn (a malformed output loses only its facts)."""
    memory = exploration.memory
    try:
        summary = ctx.engine.summarise_exploration(memory.summaries[-1] if memory.summaries else "", pages, usage)
    except ModelOutputError as malformed:  # the pages stay seen; only this turn's facts are lost
        exploration.problems.append(f"turn {turn}: the summariser's output was malformed: {malformed.message}")
        return
    memory.facts += summary.facts
    memory.summaries.append(summary.summary)


class SiteExplorer:
    """One website exploration in progress: the engine chooses, the session acts, each step is
    stored with what it taught the memory."""

    def __init__(self, ctx: GenerationContext, session: BrowserSession, exploration: SiteExploration) -> None:
        self.ctx, self.session, self.exploration = ctx, session, exploration
        self.memory = exploration.memory
        self.last_action: str | None = None
        self.max_steps = session.limits.max_pages * 3  # reading and failed steps load no page: a cap all the same

    def run(self, steps_per_turn: int, usage: Usage) -> None:
        turn = 1 + self.exploration.steps // steps_per_turn
        opening = ExploreAction(tool="open_url", args={"url": self.exploration.start_url})
        pending: list[ExploreAction] = [opening]
        idle_turns = 0
        while not self.exploration.stopped:
            steps_before = self.exploration.steps
            try:
                self.turn(turn, steps_per_turn, pending, usage)
            except (ModelCallFailed, ModelUnavailableError) as lost:  # the endpoint's fault: keep what was found
                self.exploration.stopped = f"the model endpoint failed: {lost.message}"
            idle_turns = 0 if self.exploration.steps > steps_before else idle_turns + 1
            if idle_turns >= MAX_IDLE_TURNS and not self.exploration.stopped:
                self.exploration.stopped = f"the explorer chose no usable action in {MAX_IDLE_TURNS} turns in a row"
            turn += 1

    def turn(self, turn: int, steps_per_turn: int, pending: list[ExploreAction], usage: Usage) -> None:
        """Up to `steps_per_turn` steps, then the summariser's update when the turn found new pages."""
        new_pages: list[ObservedPage] = []
        for _ in range(steps_per_turn):
            check_cancelled(self.ctx)
            if stop := self.stop_reason():
                self.exploration.stopped = stop
                break
            try:
                action = pending.pop(0) if pending else self.ctx.engine.choose_site_action(self.view(), usage)
            except ModelCallFailed:
                raise
            except ModelOutputError as malformed:  # this turn ends; the next one chooses again
                self.exploration.problems.append(f"turn {turn}: the explorer's output was malformed: "
                                                 f"{malformed.message}")
                break
            if action is None:
                self.exploration.stopped = "nothing left to explore"
                break
            self.take(action, turn, new_pages)
        if new_pages:
            summarise_turn(self.ctx, self.exploration, turn, new_pages, usage)

    def stop_reason(self) -> str | None:
        if spent := self.session.budget_left():
            return spent
        if self.exploration.steps >= self.max_steps:
            return f"the cap of {self.max_steps} steps is reached"
        return None

    # ---- one step ---------------------------------------------------------------------------------

    def take(self, action: ExploreAction, turn: int, new_pages: list[ObservedPage]) -> None:
        before = self.session.view
        try:
            view = self.act(action)
        except TaskCraftError as error:
            self.record(action, turn, before, error=error.message)
            if target := self.target_url(action, before):
                self.exploration.failed_urls.append(target)
            self.refresh()
            return
        learned = self.learn(action, view, before, new_pages)
        self.record(action, turn, view, learned=learned)
        if action.tool in INTERACTIONS:
            self.exploration.interactions += 1
        self.last_action = action.tool

    @staticmethod
    def target_url(action: ExploreAction, before: PageView | None) -> str | None:
        """The page an open_url or open_link action was after (None for other actions)."""
        if action.tool == "open_url":
            return str(action.args.get("url"))
        number = action.args.get("number")
        if action.tool == "open_link" and before is not None and isinstance(number, int) \
                and 1 <= number <= len(before.links):
            return before.links[number - 1].url
        return None

    def act(self, action: ExploreAction) -> PageView:
        session, args = self.session, action.args
        actions: dict[str, Callable[[], PageView]] = {
            "open_url": lambda: session.open_url(str(args["url"])),
            "open_link": lambda: session.open_link(int(args["number"])),
            "go_back": session.go_back,
            "read_page": session.read_page,
            "type_and_submit": lambda: session.type_and_submit(int(args["field"]), str(args["text"])),
            "select_option": lambda: session.select_option(int(args["field"]), str(args["option"])),
        }
        if action.tool not in actions:
            raise TaskCraftError(f"the explorer has no action {action.tool!r}",
                                 hint=f"actions: {', '.join(EXPLORER_ACTIONS)}")
        try:
            return actions[action.tool]()
        except (KeyError, TypeError, ValueError) as error:
            raise TaskCraftError(f"the arguments {args} do not fit {action.tool} ({type(error).__name__})") from None

    def refresh(self) -> None:
        """After a failed step, look at what the browser shows now (the last good view when it cannot)."""
        try:
            self.session.read_page()
        except Exception:  # noqa: BLE001 (the next action starts from the last good view)
            pass

    def learn(self, action: ExploreAction, view: PageView, before: PageView | None,
              new_pages: list[ObservedPage]) -> str:
        """Update the memory with the state reached; what was new, in words."""
        learned: list[str] = []
        if action.tool == "type_and_submit" and before is not None:
            results = [link for link in view.links if link.in_main][:15]
            self.memory.searches.append(SearchMade(term=str(action.args["text"]), from_url=before.url,
                                                   results_url=view.url, results=results, step=self.exploration.steps))
            learned.append(f"searched “{action.args['text']}”: {len(view.links)} links on the results page")
        known = next((p for p in self.memory.pages if p.fingerprint == view.fingerprint), None)
        if known is None:
            learned.append(self.new_state(action, view, before, new_pages))
        else:
            learned.append(f"state seen before (“{known.title}”)")
        learned += [f"found {f.kind} {f.name!r}" for f in self.new_functions(view)]
        return "; ".join(learned)

    def new_state(self, action: ExploreAction, view: PageView, before: PageView | None,
                  new_pages: list[ObservedPage]) -> str:
        try:
            document_id = ingest_page(self.ctx.workspace, view.url, self.session.html())
        except IngestError as error:
            return f"new state “{view.title}”, not stored ({error.message})"
        link_text = ""
        if action.tool == "open_link" and before is not None:
            number = int(action.args["number"])
            link_text = before.links[number - 1].text if 1 <= number <= len(before.links) else ""
        page = PageSeen(document_id=document_id, title=view.title, first_step=self.exploration.steps, url=view.url,
                        fingerprint=view.fingerprint, outlinks=view.links, link_text=link_text)
        self.memory.pages.append(page)
        # Facts are noted in the text ingestion extracted (prose; code and navigation left out), which is
        # what the task will point at; the executor reads the same sentences off the page.
        document = self.ctx.workspace.store.get_document(document_id)
        text = document.text if document else view.text
        self.exploration.texts[document_id] = text
        new_pages.append(ObservedPage(document_id=document_id, title=view.title, start=0, text=text[:SUMMARY_CHARS]))
        return f"new state “{view.title}” ({view.fingerprint}), stored as document {document_id}"

    def new_functions(self, view: PageView) -> list[FunctionFound]:
        """Functions of the page not known yet (a search box on every page is one function)."""
        return remember_functions(self.memory, view.url, self.exploration.steps,
                                  [(f.kind, f.name, f.label) for f in view.fields], [link.text for link in view.links])

    def record(self, action: ExploreAction, turn: int, view: PageView | None, *, learned: str = "",
               error: str | None = None) -> None:
        observation = f"Error: {error}" if error else (view.observation() if view else "")
        step = ExplorationStep(
            run_id=self.exploration.run_id, position=self.exploration.steps, turn=turn,
            url=view.url if view else self.exploration.start_url, title=view.title if view else "",
            action=action.tool, args=action.args, observation=observation[:OBSERVATION_CHARS], learned=learned,
            fingerprint=view.fingerprint if view and not error else None,
            document_id=self._document_of(view) if not error else None, error=error,
            screenshot=self.session.screenshot())
        self.ctx.workspace.store.add_exploration_steps([step])
        self.exploration.steps += 1

    def _document_of(self, view: PageView | None) -> str | None:
        page = next((p for p in self.memory.pages if view and p.fingerprint == view.fingerprint), None)
        return page.document_id if page else None

    # ---- what the engine sees, and the memory per turn ------------------------------------------

    def view(self) -> SiteView:
        current = self.session.view
        failed = set(self.exploration.failed_urls)
        visited = [p.url for p in self.memory.pages if p.url]
        seen = set(visited) | failed
        known = {link.url: link for page in self.memory.pages for link in page.outlinks if link.url not in seen}
        return SiteView(
            current=current.observation() if current else "(no page)", url=current.url if current else "",
            links=[link for link in current.links if link.url not in failed] if current else [],
            fields=[f.model_dump() for f in current.fields] if current else [],
            visited=visited, known_links=list(known.values())[:MAX_KNOWN_LINKS], functions=self.memory.functions,
            searches=[s.term for s in self.memory.searches], summary=self.summary(), last_action=self.last_action,
            steps_left=max(0, self.session.limits.max_pages - self.session.page_loads))

    def summary(self) -> str:
        return self.memory.summaries[-1] if self.memory.summaries else ""
