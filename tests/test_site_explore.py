"""Exploring a live website (METHOD §2, after AutoPlay) on a small site served on 127.0.0.1: the
explorer drives Debian's chromium through Playwright, uses the site's search, stores every step with a
screenshot and every page read as a document, stays inside the URL guard, the same-site rule,
robots.txt and its budget, survives a page that never loads and garbage from the model, and its
goal-style tasks are executed and verified through the real agent loop."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from taskcraft_core.agent.browser import BrowserLimits, BrowserSession, chromium_available
from taskcraft_core.cli import main
from taskcraft_core.errors import TaskCraftError, UnsafeURLError
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.explore.goals import generate_goal_tasks
from taskcraft_core.generate.explore.site import explore_site
from taskcraft_core.generate.llm.engine import LLMEngine
from taskcraft_core.models.chat import Usage
from taskcraft_core.runs.service import cancel_run
from taskcraft_core.runs.site_exploration import (
    ExploreRequest,
    ExploreSummary,
    create_exploration,
    exploration_runs,
    exploration_summary,
    resume_exploration,
    run_exploration,
    start_exploration,
)
from taskcraft_core.schema import GenerationRun, Task, guideline_of
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.scripted_model import ScriptedChatModel, call, reply, structured
from tests.site_pages import harbour_site
from tests.site_server import RecordingServer, serve_pages

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(Settings()), reason="no Chromium to drive")]

FAST = {"allow_private_urls": True, "explore_rate_limit_s": 0.0, "explore_page_timeout_s": 1.0}


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[str, RecordingServer, RecordingServer]]:
    """The harbour site, and another site it refers to (which must never be asked for anything)."""
    with serve_pages({"/pixel.png": "x", "/partner.html": "<p>partner</p>"}) as (other_url, other), \
            serve_pages(harbour_site(other_url)) as (url, server):
        yield url, server, other


def open_workspace(home: Path, **settings: Any) -> Workspace:
    return Workspace.open(Settings(home=home, **FAST | settings))


def run_tasks(workspace: Workspace, run_id: str) -> list[Task]:
    return workspace.store.get_tasks(workspace.store.list_task_ids(TaskFilter(run_ids=[run_id])))


@pytest.fixture(scope="module")
def explored(sites: tuple, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, ExploreSummary]:
    url, server, _other = sites
    workspace = open_workspace(tmp_path_factory.mktemp("explored") / "home")
    server.requested.clear()
    summary = start_exploration(workspace, ExploreRequest(start_url=f"{url}/index.html", max_pages=12,
                                                          engine="offline", tasks_per_guideline=2))
    return workspace, summary


def paths(workspace: Workspace, summary: ExploreSummary) -> list[tuple[str, str]]:
    return [(step.action, step.url.split("/", 3)[3]) for step in workspace.store.exploration_steps(summary.run_id)]


def test_the_explorer_searches_with_terms_from_the_pages_and_stores_every_step(explored: tuple) -> None:
    workspace, summary = explored
    assert paths(workspace, summary) == [
        ("open_url", "index.html"), ("type_and_submit", "search.html?q=Brenna+Light"), ("open_link", "brenna.html"),
        ("open_link", "museum.html"), ("open_link", "ferry.html"), ("type_and_submit", "search.html?q=Tide+Tables"),
        ("open_link", "search.html"), ("open_url", "search.html"), ("open_url", "tides.html")]  # slow.html failed
    steps = workspace.store.exploration_steps(summary.run_id)
    assert steps[1].args == {"field": 1, "text": "Brenna Light"}
    assert "searched “Brenna Light”: 3 links on the results page" in steps[1].learned
    assert "found search 'q'" in steps[0].learned
    assert (summary.pages_visited, summary.interactions, summary.steps) == (8, 2, 9)
    assert summary.stopped == "nothing left to explore" and summary.functions == ["search q"]
    # the screenshots are small JPEGs, 640 pixels wide, kept in the database
    shot = Image.open(io.BytesIO(workspace.store.exploration_screenshot(summary.run_id, 2) or b""))
    assert (shot.format, shot.size[0]) == ("JPEG", 640)
    assert all(len(step.screenshot or b"") < 60_000 for step in steps if not step.error)


def test_pages_read_are_documents_of_the_run(explored: tuple) -> None:
    workspace, summary = explored
    run = workspace.store.get_run(summary.run_id)
    assert run is not None and run.status == "completed"
    documents = [workspace.store.get_document(i) for i in run.config.document_ids]
    brenna = next(d for d in documents if d and d.source.endswith("/brenna.html"))
    assert "first lit on 14 March 1871 by the keeper Jonas Vell" in brenna.text
    step = next(s for s in workspace.store.exploration_steps(summary.run_id) if s.url.endswith("/brenna.html"))
    assert step.document_id == brenna.id


def test_goal_tasks_in_every_family_are_executed_and_verified_from_their_trajectories(explored: tuple) -> None:
    workspace, summary = explored
    lit = "Brenna Light was first lit on 14 March 1871 by the keeper Jonas Vell."
    tasks = run_tasks(workspace, summary.run_id)
    accepted = [t for t in tasks if t.status == "pending"]
    assert Counter(guideline_of(t) for t in accepted) == {
        "feature_use": 1, "information_retrieval": 2, "navigation": 2, "composition": 2, "repetition": 1}
    assert summary.by_family["information_retrieval"] == {"candidates": 2, "accepted": 2}
    assert (summary.candidates, summary.accepted) == (len(tasks), len(accepted))
    feature = next(t for t in accepted if t.guideline == "feature_use")
    assert feature.question == ("Use the site's search to find the page “Brenna Light — the lighthouse” and answer "
                                "from it: Brenna Light was first lit on what date by the keeper Jonas Vell?")
    assert feature.golden_answer == "1871-03-14" and feature.engine == "offline"
    tools = [s.tool for s in feature.trajectory if s.type == "tool"]
    assert tools == ["read_page", "type_and_submit", "open_link"]
    assert feature.verification is not None and feature.verification.model_alone_score == 0
    assert feature.verification.agent_answer == "14 March 1871" and feature.verification.agent_score == 2
    navigation = next(t for t in accepted if t.guideline == "navigation")
    assert "type_and_submit" not in [s.tool for s in navigation.trajectory]
    # the task points at the page it is answered from, stored as a document of the run
    document = workspace.store.get_document(feature.document_id or "")
    assert document is not None and document.text[feature.span_start:feature.span_end] == lit  # 1871-03-14 written so


def test_verified_website_tasks_pass_the_checks_of_their_tool_calls(explored: tuple) -> None:
    workspace, summary = explored
    verified = [t for t in run_tasks(workspace, summary.run_id) if t.verification is not None]
    assert len(verified) >= 8
    assert {t.id: t.checks for t in verified} == {t.id: {} for t in verified}  # the browser tools' schemas known


def test_requests_to_another_site_or_disallowed_by_robots_are_never_made(explored: tuple, sites: tuple) -> None:
    workspace, summary = explored
    _url, server, other = sites
    assert other.requested == []  # not the image every page shows, not the partner link
    assert "/private/records.html" not in server.requested and "/robots.txt" in server.requested
    assert summary.refused >= 8  # the image, once per page that loaded (not the slow one: given up after 1 s)
    steps = workspace.store.exploration_steps(summary.run_id)
    assert not any("private" in s.url or "partner" in s.observation for s in steps)


def test_a_page_that_never_loads_fails_its_step_and_the_exploration_goes_on(explored: tuple) -> None:
    workspace, summary = explored
    steps = workspace.store.exploration_steps(summary.run_id)
    [failed] = [s for s in steps if s.error]
    assert (failed.action, failed.args, failed.error) == (
        "open_url", {"url": failed.args["url"]}, "the page did not load within 1 s")
    assert failed.args["url"].endswith("/slow.html")
    assert steps[-1].url.endswith("/tides.html") and steps[-1].position > failed.position


def test_the_budget_of_pages_stops_the_exploration(sites: tuple, tmp_path: Path) -> None:
    url = sites[0]
    workspace = open_workspace(tmp_path / "home")
    workspace.store.save_run(GenerationRun(id="not-an-exploration"))
    run = create_exploration(workspace, ExploreRequest(start_url=f"{url}/index.html", max_pages=2, engine="offline",
                                                       guidelines=["information_retrieval"]))
    assert [r.id for r in exploration_runs(workspace)] == [run.id]  # a page lists these, then shows the steps
    summary = run_exploration(workspace, run.id)
    assert summary.stopped == "the budget of 2 page loads is spent"
    with pytest.raises(TaskCraftError, match="No website exploration run with id not-an-exploration"):
        resume_exploration(workspace, "not-an-exploration")
    assert paths(workspace, summary) == [("open_url", "index.html"), ("type_and_submit", "search.html?q=Brenna+Light")]


def test_a_start_url_on_a_private_address_is_refused_before_any_browser(sites: tuple, tmp_path: Path) -> None:
    workspace = Workspace.open(Settings(home=tmp_path / "home"))
    with pytest.raises(UnsafeURLError, match="127.0.0.1 resolves to 127.0.0.1, a loopback address"):
        start_exploration(workspace, ExploreRequest(start_url=f"{sites[0]}/index.html", engine="offline"))
    [run] = workspace.store.list_runs()
    assert workspace.store.exploration_steps(run.id) == []


def test_cancel_keeps_what_was_found_and_resume_goes_on(sites: tuple, tmp_path: Path) -> None:
    url = sites[0]
    workspace = open_workspace(tmp_path / "home")
    cancel = threading.Event()
    original = workspace.store.add_exploration_steps

    def cancel_after_three(steps: Any) -> int:  # someone presses Ctrl-C while the third step is stored
        written = original(steps)
        if steps[0].position == 2:
            cancel.set()
        return written

    workspace.store.add_exploration_steps = cancel_after_three  # type: ignore[method-assign]
    summary = start_exploration(workspace, ExploreRequest(start_url=f"{url}/index.html", max_pages=12,
                                                          engine="offline", tasks_per_guideline=1), cancel)
    assert (summary.status, summary.steps, summary.candidates) == ("cancelled", 3, 0)
    assert summary.stopped == "cancelled" and summary.pages_visited == 3

    workspace.store.add_exploration_steps = original  # type: ignore[method-assign]
    resumed = resume_exploration(workspace, summary.run_id)
    assert resumed.status == "completed" and resumed.run_id == summary.run_id
    steps = paths(workspace, resumed)
    assert steps[:4] == [("open_url", "index.html"), ("type_and_submit", "search.html?q=Brenna+Light"),
                         ("open_link", "brenna.html"), ("open_url", "index.html")]  # the resumed opening
    assert ("open_link", "museum.html") in steps[4:] and ("open_link", "brenna.html") not in steps[4:]
    assert resumed.pages_visited == 8 and resumed.accepted >= 3
    assert exploration_summary(workspace, summary.run_id) == resumed


def test_a_cancel_written_on_the_run_stops_the_exploration(sites: tuple, tmp_path: Path) -> None:
    url = sites[0]
    workspace = open_workspace(tmp_path / "home")
    original = workspace.store.add_exploration_steps

    def cancel_from_elsewhere(steps: Any) -> int:  # `cancel RUN_ID` from another process
        written = original(steps)
        if steps[0].position == 1:
            cancel_run(workspace, steps[0].run_id)
        return written

    workspace.store.add_exploration_steps = cancel_from_elsewhere  # type: ignore[method-assign]
    summary = start_exploration(workspace, ExploreRequest(start_url=f"{url}/index.html", engine="offline"))
    assert summary.status == "cancelled" and 2 <= summary.steps <= 4 and summary.candidates == 0


def scripted(workspace: Workspace, generation: list, solver: list) -> GenerationContext:
    engine = LLMEngine(ScriptedChatModel.of(generation), ScriptedChatModel.of(solver), ScriptedChatModel.of([]),
                       model="scripted")
    workspace.store.save_run(GenerationRun(id="run-llm"))
    return GenerationContext(workspace, engine, Usage(), run_id="run-llm")


def test_llm_explorer_and_task_writer_survive_garbage(sites: tuple, tmp_path: Path) -> None:
    url = sites[0]
    workspace = open_workspace(tmp_path / "home")
    summary = {"summary": "A harbour office with a search box.", "facts": []}
    lit = "It was first lit on 14 March 1871 by the keeper Jonas Vell."
    brenna = f"{url}/brenna.html"
    question = "Using the site's search, find the lighthouse's page and give the date it was first lit."
    generation = [
        structured({"tool": "fly", "number": 1}),  # garbage: no such action; the turn ends
        structured(summary),
        structured({"tool": "type_and_submit", "number": 1, "text": "Brenna Light"}),
        structured({"tool": "open_link", "number": 99}),  # garbage: no link 99; the turn ends
        structured({"summary": "The search lists the lighthouse.", "facts": []}),
        structured({"tool": "open_link", "number": 3}),
        structured({"tool": "stop"}),
        structured({"summary": "The lighthouse was first lit in 1871.", "facts": []}),
        structured({"tasks": [  # feature use: one good task, one unseen answer, one without answers
            {"question": question, "pages": [brenna], "search": True,
             "answers": [{"answer": "14 March 1871", "url": brenna, "evidence": lit}]},
            {"question": "How tall is the lighthouse's lamp room?", "pages": [brenna],
             "answers": [{"answer": "9 metres", "url": brenna}]},
            {"question": "Where is the ferry?", "pages": [], "answers": []}]}),
        reply("{'tasks': oops"), reply("still not json"),  # navigation: malformed twice
    ]
    solver = [reply("I don't know."), call("read_page", {}, "c1"),
              call("type_and_submit", {"field": 1, "text": "Brenna Light"}, "c2"),
              call("open_link", {"number": 3}, "c3"), reply("14 March 1871")]
    ctx = scripted(workspace, generation, solver)
    settings = workspace.settings
    with BrowserSession(f"{url}/index.html", settings, BrowserLimits.from_settings(settings, max_pages=8)) as session:
        exploration = explore_site(f"{url}/index.html", ctx, session, steps_per_turn=2)
        tasks = generate_goal_tasks(exploration, ctx, session, guidelines=["feature_use", "navigation"])
    assert [(s.action, s.error) for s in workspace.store.exploration_steps("run-llm")] == [
        ("open_url", None), ("type_and_submit", None), ("open_link", None)]
    assert exploration.problems == [
        "turn 1: the explorer's output was malformed: the explorer chose fly 1, which the current page cannot do",
        "turn 2: the explorer's output was malformed: the explorer chose open_link 99, which the current page cannot "
        "do",
        exploration.problems[-1]]
    assert exploration.problems[-1].startswith("navigation: the task writer's output was malformed: No valid "
                                               "GoalTasksOut")
    assert exploration.stopped == "nothing left to explore" and exploration.memory.searches[0].term == "Brenna Light"
    by_question = {t.question: t for t in tasks}
    good = by_question[question]
    assert (good.status, good.guideline, good.engine) == ("pending", "feature_use", "openai")
    assert [s.tool for s in good.trajectory if s.type == "tool"] == ["read_page", "type_and_submit", "open_link"]
    assert by_question["How tall is the lighthouse's lamp room?"].failure_reason == \
        f"the answer “9 metres” was not seen on {brenna}"
    assert by_question["Where is the ferry?"].failure_reason == "the writer left out the answers"


def test_cli_explore_prints_its_outcome_and_exports_the_steps(sites: tuple, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "home"))
    code = main(["explore", f"{sites[0]}/index.html", "--allow-private-urls", "--max-pages", "4", "--engine",
                 "offline", "--guidelines", "feature_use", "--tasks-per-guideline", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {k: out[k] for k in ("pages_visited", "interactions", "candidates", "accepted", "by_family")} == {
        "pages_visited": 4, "interactions": 1, "candidates": 1, "accepted": 1,
        "by_family": {"feature_use": {"candidates": 1, "accepted": 1}}}
    exported = tmp_path / "steps.jsonl"
    assert main(["explore-steps", out["run_id"], "--out", str(exported)]) == 0
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [line["action"] for line in lines] == ["open_url", "type_and_submit", "open_link", "open_link"]
    assert base64.b64decode(lines[0]["screenshot_base64"])[:2] == b"\xff\xd8" and lines[0]["screenshot_path"] is None
    shots = tmp_path / "shots"
    assert main(["explore-steps", out["run_id"], "--out", str(exported), "--screenshots", str(shots)]) == 0
    first = json.loads(exported.read_text().splitlines()[0])
    assert first["screenshot_base64"] is None and Path(first["screenshot_path"]).read_bytes()[:2] == b"\xff\xd8"
    assert main(["explore", "--resume", out["run_id"], f"{sites[0]}/index.html"]) == 1  # not both


def test_the_offline_executor_answers_a_question_it_cannot_read_with_not_found() -> None:
    from taskcraft_core.generate.offline.cloze import NOT_FOUND
    from taskcraft_core.generate.offline.site import solve_goal

    calls: list[tuple[str, dict]] = []

    def browser(tool: str, args: dict) -> str:
        calls.append((tool, args))
        return "Page: Home\nURL: http://127.0.0.1/\nText: Nothing here.\nLinks (0):\n(none)\nFields:\n(none)"

    assert solve_goal("Tell me everything about ### ??", browser) == NOT_FOUND
    assert solve_goal("Use the site's search to find the page “X” and answer from it: what?", browser) == \
        NOT_FOUND  # no search box on the page: nothing typed, nothing made up
    assert calls == [("read_page", {}), ("read_page", {})]


def test_the_browser_connects_to_the_address_the_url_guard_checked() -> None:
    from ipaddress import ip_address

    from taskcraft_core.agent.browser import CHROMIUM_ARGS, launch_args

    assert launch_args("https://docs.example.org/a", ip_address("93.184.216.34")) == [
        *CHROMIUM_ARGS, "--host-resolver-rules=MAP docs.example.org 93.184.216.34"]
    assert launch_args("https://docs.example.org/a", ip_address("2606:2800:220:1::1"))[-1] == \
        "--host-resolver-rules=MAP docs.example.org [2606:2800:220:1::1]"
    assert launch_args("http://127.0.0.1:8000/", None) == CHROMIUM_ARGS  # private addresses allowed: not checked


def test_website_tasks_go_through_the_near_duplicate_gate_and_into_the_index(sites: tuple, tmp_path: Path) -> None:
    from taskcraft_core.index.task_vectors import index_tasks

    url, _server, _other = sites
    workspace = open_workspace(tmp_path / "home", duplicate_action="skip")
    earlier = Task(id="earlier", kind="atomic", question=(
        "Use the site's search to find the page “Brenna Light — the lighthouse” and answer from it: Brenna Light was "
        "first lit on what date by the keeper Jonas Vell?"), golden_answer="1871-03-14",
        content_identifier="Brenna Light", engine="offline", model="offline")
    workspace.store.add_tasks([earlier])
    index_tasks(workspace, [earlier])
    summary = start_exploration(workspace, ExploreRequest(start_url=f"{url}/index.html", max_pages=12,
                                                          engine="offline", tasks_per_guideline=2,
                                                          guidelines=["feature_use", "navigation"]))
    tasks = run_tasks(workspace, summary.run_id)
    [feature] = [t for t in tasks if t.guideline == "feature_use"]
    assert (feature.status, feature.failure_reason) == ("duplicate", "near-duplicate of earlier")
    assert summary.by_family["feature_use"] == {"candidates": 1, "accepted": 0}
    assert any(t.status == "pending" for t in tasks if t.guideline == "navigation")
    assert {t.id for t in tasks} <= set(workspace.index.task_ids())


def executor_failing_at(monkeypatch: pytest.MonkeyPatch, failures: dict[int, BaseException]) -> list[str]:
    """The executor, with the failures given raised at those of its runs (counted from 1)."""
    from taskcraft_core.generate.explore import goals

    original, questions = goals.execute, []

    def execute(question: str, *args: Any) -> Any:
        questions.append(question)
        if len(questions) in failures:
            raise failures[len(questions)]
        return original(question, *args)

    monkeypatch.setattr(goals, "execute", execute)
    return questions


def test_a_candidate_whose_execution_fails_is_a_failed_task_and_the_others_go_on(
        sites: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = open_workspace(tmp_path / "home")
    questions = executor_failing_at(monkeypatch, {1: TaskCraftError("the page did not load within 1 s")})
    summary = start_exploration(workspace, ExploreRequest(start_url=f"{sites[0]}/index.html", max_pages=12,
                                                          engine="offline", tasks_per_guideline=2,
                                                          guidelines=["information_retrieval"]))
    tasks = {t.question: t for t in run_tasks(workspace, summary.run_id)}
    assert (summary.status, len(questions), len(tasks)) == ("completed", 2, 2)
    failed = tasks[questions[0]]
    assert (failed.status, failed.failure_reason) == (
        "failed_verification", "execution failed: the page did not load within 1 s")
    assert tasks[questions[1]].status == "pending"


def test_a_browser_crash_while_tasks_are_written_keeps_the_tasks_verified_before_it(
        sites: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = open_workspace(tmp_path / "home")
    questions = executor_failing_at(monkeypatch, {2: RuntimeError("Target page, context or browser has been closed")})
    run = create_exploration(workspace, ExploreRequest(start_url=f"{sites[0]}/index.html", max_pages=12,
                                                       engine="offline", tasks_per_guideline=2,
                                                       guidelines=["information_retrieval"]))
    with pytest.raises(RuntimeError, match="browser has been closed"):
        run_exploration(workspace, run.id)
    [kept] = run_tasks(workspace, run.id)
    assert (kept.question, kept.status) == (questions[0], "pending")
    stored = workspace.store.get_run(run.id)
    assert stored is not None and (stored.status, stored.error) == (
        "failed", "Target page, context or browser has been closed")
    assert exploration_summary(workspace, run.id).accepted == 1


def test_a_goal_writer_call_that_failed_costs_its_guideline_and_alone_an_endpoint_error(
        sites: tuple, tmp_path: Path) -> None:
    from taskcraft_core.errors import ModelCallFailed, ModelUnavailableError
    from taskcraft_core.generate.explore.records import GoalCandidate, SiteExploration
    from taskcraft_core.generate.offline.engine import OfflineEngine

    class WriterCallFails(OfflineEngine):
        def write_goal_tasks(self, exploration: SiteExploration, guideline: str, limit: int,
                             usage: Usage) -> list[GoalCandidate]:
            if guideline == "navigation":
                raise ModelCallFailed("The model endpoint http://127.0.0.1:9/v1 failed with HTTP 502 after 2 retries: "
                                      "bad gateway", hint="The server is failing; check its logs or try again later.")
            return super().write_goal_tasks(exploration, guideline, limit, usage)

    workspace = open_workspace(tmp_path / "home")
    workspace.store.save_run(GenerationRun(id="run-lost"))
    ctx = GenerationContext(workspace, WriterCallFails(), Usage(), run_id="run-lost")
    settings, start = workspace.settings, f"{sites[0]}/index.html"
    with BrowserSession(start, settings, BrowserLimits.from_settings(settings, max_pages=4)) as session:
        exploration = explore_site(start, ctx, session)
        made = generate_goal_tasks(exploration, ctx, session, guidelines=["feature_use", "navigation"],
                                   per_guideline=1)
        assert [t.guideline for t in made] == ["feature_use"]
        assert exploration.problems == ["navigation: model call failed: The model endpoint http://127.0.0.1:9/v1 "
                                        "failed with HTTP 502 after 2 retries: bad gateway"]
        with pytest.raises(ModelUnavailableError, match="failed with HTTP 502 after 2 retries: bad gateway") as lost:
            generate_goal_tasks(exploration, ctx, session, guidelines=["navigation"])
    assert type(lost.value) is ModelUnavailableError


def test_an_llm_explorer_stuck_on_invalid_actions_stops_after_three_idle_turns(sites: tuple, tmp_path: Path) -> None:
    start = f"{sites[0]}/index.html"
    workspace = open_workspace(tmp_path / "home")
    generation = [structured({"tool": "fly", "number": 1}),
                  structured({"summary": "A harbour office with a search box.", "facts": []}),
                  *[structured({"tool": "open_link", "number": 99})] * 3]  # no summary after a turn without pages
    ctx = scripted(workspace, generation, [])
    settings = workspace.settings
    with BrowserSession(start, settings, BrowserLimits.from_settings(settings, max_pages=8)) as session:
        exploration = explore_site(start, ctx, session, steps_per_turn=2)
    assert exploration.stopped == "the explorer chose no usable action in 3 turns in a row"
    assert [p.split(":")[0] for p in exploration.problems] == ["turn 1", "turn 2", "turn 3", "turn 4"]
    assert exploration.steps == 1 and len(ctx.engine.generation.received) == 5  # type: ignore[attr-defined]


def test_an_llm_explorer_whose_endpoint_fails_ends_with_that_reason_and_keeps_what_it_found(
        sites: tuple, tmp_path: Path) -> None:
    from taskcraft_core.errors import ModelCallFailed

    start = f"{sites[0]}/index.html"
    workspace = open_workspace(tmp_path / "home")
    ctx = scripted(workspace, [structured({"tool": "type_and_submit", "number": 1, "text": "Brenna Light"})], [])
    chosen = ctx.engine.choose_site_action

    def then_a_502(view: Any, usage: Usage) -> Any:
        if workspace.store.exploration_steps("run-llm", screenshots=False)[1:]:
            raise ModelCallFailed("The model endpoint http://127.0.0.1:9/v1 failed with HTTP 502 after 2 retries")
        return chosen(view, usage)

    ctx.engine.choose_site_action = then_a_502  # type: ignore[method-assign]
    settings = workspace.settings
    with BrowserSession(start, settings, BrowserLimits.from_settings(settings, max_pages=8)) as session:
        exploration = explore_site(start, ctx, session, steps_per_turn=5)
    assert exploration.stopped == ("the model endpoint failed: The model endpoint http://127.0.0.1:9/v1 failed with "
                                   "HTTP 502 after 2 retries")
    assert [s.action for s in workspace.store.exploration_steps("run-llm")] == ["open_url", "type_and_submit"]
    assert len(exploration.memory.pages) == 2 and exploration.problems == []


def test_the_executor_budget_is_a_setting_and_the_run_has_a_page_cap(sites: tuple, tmp_path: Path) -> None:
    request = ExploreRequest(start_url=f"{sites[0]}/index.html", max_pages=4, engine="offline", tasks_per_guideline=2,
                             guidelines=["information_retrieval", "navigation"])
    workspace = open_workspace(tmp_path / "capped", explore_run_max_pages=6)
    summary = start_exploration(workspace, request)
    tasks = run_tasks(workspace, summary.run_id)
    spent = [t for t in tasks if t.failure_reason == "run page budget spent"]
    # the explorer's 4 loads, then the first task's executor loads 2 pages: the cap of 6 is reached
    assert (len(tasks), len(spent), summary.stopped) == (4, 3, "the budget of 4 page loads is spent")
    assert [t.guideline for t in tasks if t not in spent] == ["information_retrieval"]
    assert summary.problems[-1] == ("run page budget spent: 6 page loads reached the run's cap of 6; "
                                    "3 candidate(s) not executed")
    workspace = open_workspace(tmp_path / "one-page", explore_task_max_pages=1)
    summary = start_exploration(workspace, request)
    reasons = {t.failure_reason for t in run_tasks(workspace, summary.run_id)}
    assert summary.accepted == 0 and reasons == {"executor's answer judged 0"}  # it could open no page
