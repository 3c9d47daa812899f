"""Exploration mode (METHOD §2): the explorer walks the sample corpus's links, tasks of every
guideline family are written from what it saw, executed with the link tools and verified; the
LLM engine's explore steps on scripted models, malformed output costing one candidate only."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from taskcraft_core.agent.tools import make_link_tools, resolve_link
from taskcraft_core.errors import ModelCallFailed, ModelUnavailableError, TaskCraftError
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.difficulty import difficulty
from taskcraft_core.generate.explore.records import CandidateAnswer, Exploration, ExploreCandidate, Move
from taskcraft_core.generate.explore.tasks import (
    NoExploreTasksError,
    explore_corpus,
    explore_task,
    generate_explore_tasks,
    visited_pages,
)
from taskcraft_core.generate.explore.walk import link_graph, reachable
from taskcraft_core.generate.factory import make_engine
from taskcraft_core.generate.llm.engine import LLMEngine
from taskcraft_core.generate.offline.cloze import OFFLINE_MODEL
from taskcraft_core.generate.offline.engine import OfflineEngine
from taskcraft_core.generate.offline.explore import parse_route
from taskcraft_core.generate.prompts import (
    EXPLORE_GUIDELINES,
    EXPLORE_SOLVER_SYSTEM,
    EXPLORE_TASKS,
    PROMPT_TEXTS,
)
from taskcraft_core.generate.text import contains_answer
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.ingest.pipeline import load_sample_corpus
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Document, Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import DocumentSummary, Store
from taskcraft_core.workspace import Workspace
from tests.generation_corpus import LIGHTHOUSE, add_document
from tests.scripted_model import ScriptedChatModel, call, reply, structured

SAMPLE_TITLES = ["Ada Merrow", "The Halvard Observatory", "Instruments of the Halvard Observatory", "RV Storm Petrel",
                 "The Skerry Deep Expedition of 1964", "A Timeline of Kestrel Haven Science"]


def sample_workspace(home: Path) -> tuple[Workspace, GenerationContext, list[Document]]:
    settings = Settings(home=home)
    workspace = Workspace.open(settings)
    load_sample_corpus(workspace)
    documents = [workspace.store.get_document(d.id) for d in workspace.store.list_documents()]
    return workspace, GenerationContext(workspace, make_engine(settings), Usage(), run_id="run-x"), documents


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    workspace, ctx, documents = sample_workspace(tmp_path_factory.mktemp("explore") / "home")
    exploration = explore_corpus(documents, ctx)
    tasks = generate_explore_tasks(exploration, ctx)
    return {"workspace": workspace, "ctx": ctx, "documents": documents, "exploration": exploration, "tasks": tasks}


def ids_by_title(documents: list[Document]) -> dict[str, str]:
    return {d.title: d.id for d in documents}


def test_exploration_visits_every_reachable_page_breadth_first_and_remembers(explored: dict) -> None:
    exploration: Exploration = explored["exploration"]
    documents, ids = explored["documents"], ids_by_title(explored["documents"])
    assert exploration.start_document_id == ids["Ada Merrow"]  # the page with the most links to others
    graph = link_graph(documents, explored["ctx"])
    pages = [p.document_id for p in exploration.memory.pages]
    assert set(pages) == set(reachable(graph, ids["Ada Merrow"])) == {d.id for d in documents}
    assert [p.title for p in exploration.memory.pages] == SAMPLE_TITLES
    steps = exploration.steps
    assert [s.tool for s in steps[:3]] == ["read_document", "list_links", "follow_link"]
    assert len(steps) == 12 and [s.turn for s in steps] == [1] * 4 + [2] * 4 + [3] * 4
    # new pages first (Ada's links in page order), then links not followed yet, from the next page
    assert [(s.state, s.reached) for s in steps[2:8]] == [
        (ids["Ada Merrow"], ids["The Halvard Observatory"]),
        (ids["The Halvard Observatory"], ids["Instruments of the Halvard Observatory"]),
        (ids["Instruments of the Halvard Observatory"], ids["RV Storm Petrel"]),
        (ids["RV Storm Petrel"], ids["The Skerry Deep Expedition of 1964"]),
        (ids["The Skerry Deep Expedition of 1964"], ids["A Timeline of Kestrel Haven Science"]),
        (ids["A Timeline of Kestrel Haven Science"], ids["Instruments of the Halvard Observatory"]),
    ]
    assert all(s.args["document_id"] == ids["Ada Merrow"] for s in steps[2:7])
    assert steps[7].args == {"document_id": ids["The Halvard Observatory"], "link": "instruments.html"}
    assert len(exploration.memory.followed) == 10 and exploration.problems == []
    assert len(exploration.memory.summaries) == 3 and "Reached “Ada Merrow”" in exploration.memory.summaries[0]
    texts = {d.id: d.text for d in documents}
    facts = exploration.memory.facts
    assert Counter(f.document_id for f in facts) == {page: 20 for page in pages}
    # a name wrapped over two lines is noted with one space, as the offline engine writes it
    assert all(texts[f.document_id][f.span_start:f.span_end].split() == f.answer.split() for f in facts)
    assert exploration.model_calls == 0 and exploration.engine == "offline"


def test_every_guideline_family_gives_verified_tasks(explored: dict) -> None:
    tasks: list[Task] = explored["tasks"]
    assert Counter(t.relation for t in tasks) == {
        "information_retrieval": 5, "navigation": 5, "composition": 5, "repetition": 5}
    assert all(t.guideline == t.relation for t in tasks)  # the family, as the JSONL record's guideline
    assert Counter(t.relation for t in tasks if t.status == "pending") == {
        "information_retrieval": 5, "navigation": 4, "composition": 5, "repetition": 5}
    [failed] = [t for t in tasks if t.status == "failed_verification"]
    assert failed.failure_reason == "the question reveals its answer" and failed.trajectory == []
    assert {(t.kind, t.engine, t.model, t.content_identifier, t.run_id) for t in tasks} == {
        ("explore", "offline", OFFLINE_MODEL, "Ada Merrow", "run-x")}
    assert {t.relation: t.hops for t in tasks} == {
        "information_retrieval": 2, "navigation": 3, "composition": 2, "repetition": 3}
    assert {t.relation: t.width for t in tasks} == {
        "information_retrieval": 1, "navigation": 1, "composition": 2, "repetition": 2}


def test_every_verified_task_is_grounded_and_its_executor_followed_the_route(explored: dict) -> None:
    store, ids = explored["workspace"].store, ids_by_title(explored["documents"])
    for task in [t for t in explored["tasks"] if t.status == "pending"]:
        route = parse_route(task.question)
        required = {ids[route.start], *(ids[target] for _source, target in route.moves)}
        assert len(required) == task.hops and visited_pages(task.trajectory) >= required, task.id
        answers = [task.golden_answer] if isinstance(task.golden_answer, str) else task.golden_answer
        observations = [s.observation for s in task.trajectory if s.type == "tool"]
        assert all(any(contains_answer(a, o) for o in observations) for a in answers), task.id
        # the cited span is the answer's place on the route's final page
        assert task.document_id == ids[route.moves[-1][1]]
        chunk = store.get_chunk(task.chunk_id)
        assert chunk.document_id == task.document_id and chunk.start <= task.span_start < task.span_end <= chunk.end
        assert contains_answer(answers[-1], store.get_document(task.document_id).text[task.span_start:task.span_end])
        assert {s.tool for s in task.trajectory if s.type == "tool"} >= {"search_corpus", "list_links", "follow_link"}
        assert task.verification.model_alone_score == 0 and task.verification.agent_score == 2
        assert task.parent_ids == [] and (task.difficulty, task.difficulty_inputs) == difficulty(
            task.hops, task.width, task.verification.agent_steps, 0)


def test_explore_tasks_are_stored_and_generation_is_deterministic(explored: dict, tmp_path: Path) -> None:
    assert explored["workspace"].store.add_tasks(explored["tasks"]) == len(explored["tasks"])
    _workspace, ctx, documents = sample_workspace(tmp_path / "again")
    again = explore_corpus(documents, ctx)
    assert again.id == explored["exploration"].id
    tasks = generate_explore_tasks(again, ctx, guidelines=["retrieval", "repetition"])  # an old name still works
    first = {t.id: t for t in explored["tasks"]}
    assert [t.id for t in tasks] == [
        t.id for t in explored["tasks"] if t.relation in ("information_retrieval", "repetition")]
    assert all(first[t.id].question == t.question and first[t.id].status == t.status for t in tasks)


def test_a_short_exploration_grounds_tasks_only_in_what_it_saw(explored: dict) -> None:
    ctx, documents, ids = explored["ctx"], explored["documents"], ids_by_title(explored["documents"])
    short = explore_corpus(documents, ctx, start_document_id=ids["The Halvard Observatory"], turns=1, steps_per_turn=3)
    seen = {p.document_id for p in short.memory.pages}
    assert seen == {ids["The Halvard Observatory"], ids["Instruments of the Halvard Observatory"]}
    tasks = generate_explore_tasks(short, ctx, max_tasks_per_guideline=2)
    # navigation and repetition need 3 pages
    assert {t.relation for t in tasks} == {"information_retrieval", "composition"}
    assert all(t.document_id in seen for t in tasks)

    def candidate(moves: list[Move], answer: str, page: str) -> ExploreCandidate:
        return ExploreCandidate(guideline="information_retrieval", question="Which?",
                                start_id=ids["The Halvard Observatory"], moves=moves,
                                answers=[CandidateAnswer(answer=answer, document_id=ids[page])])

    observatory, instruments, petrel = (ids[t] for t in ("The Halvard Observatory", "Instruments of the Halvard "
                                                         "Observatory", "RV Storm Petrel"))
    rejected = {
        "unreachable": candidate([Move(from_id=observatory, to_id=petrel)], "48 metres", "RV Storm Petrel"),
        "unseen answer": candidate([Move(from_id=observatory, to_id=instruments)], "99 kilograms",
                                   "Instruments of the Halvard Observatory"),
        "jump": candidate([Move(from_id=instruments, to_id=observatory)], "1931", "The Halvard Observatory"),
        "off route": candidate([], "86 kilograms", "Instruments of the Halvard Observatory"),
    }
    reasons = {name: explore_task(c, short, ctx) for name, c in rejected.items()}
    assert {name: t.failure_reason for name, t in reasons.items()} == {
        "unreachable": f"the page {petrel!r} was not reached by the exploration",
        "unseen answer": f"the answer “99 kilograms” was not seen on page {instruments!r}",
        "jump": f"the route jumps to {instruments!r} without following a link to it",
        "off route": "the answer “86 kilograms” is on a page the route does not reach",
    }
    assert all(t.status == "failed_verification" and t.trajectory == [] and t.model_calls == 0
               for t in reasons.values())
    grounded = explore_task(candidate([Move(from_id=observatory, to_id=instruments)], "86 kilograms",
                                      "Instruments of the Halvard Observatory"), short, ctx)
    # grounded (its span cited), then executed: the offline executor cannot read "Which?" and fails it
    assert grounded.span_start == explored["workspace"].store.get_document(instruments).text.index("86 kilograms")
    assert grounded.failure_reason == "executor's answer judged 0" and grounded.trajectory
    assert short.memory.page(instruments).links is not None and short.linked(observatory, instruments)


def test_bad_exploration_requests_are_clear_errors(explored: dict) -> None:
    ctx, documents = explored["ctx"], explored["documents"]
    with pytest.raises(TaskCraftError, match="no documents to explore"):
        explore_corpus([], ctx)
    with pytest.raises(TaskCraftError, match="at least one turn of one step"):
        explore_corpus(documents, ctx, turns=0)
    with pytest.raises(TaskCraftError, match="'nope' is not among the documents"):
        explore_corpus(documents, ctx, start_document_id="nope")
    with pytest.raises(TaskCraftError, match="Unknown guideline families: feature_use") as raised:
        generate_explore_tasks(explored["exploration"], ctx, guidelines=["feature_use"])
    assert "retrieval, navigation, composition, repetition" in raised.value.hint


def test_links_resolve_by_path_url_and_unique_file_name(explored: dict) -> None:
    def page(id_: str, source: str) -> DocumentSummary:
        return DocumentSummary(id=id_, source=source, title=id_, doc_type="html", pages=1, chunk_count=1, characters=1)

    pages = [page("a", "site/docs/a.html"), page("b", "site/b.html"), page("u", "https://example.org/x/u.html"),
             page("c1", "one/c.md"), page("c2", "two/c.md"), page("d", "d.md")]
    assert resolve_link("site/docs/a.html", "../b.html#top", pages).id == "b"
    assert resolve_link("https://example.org/x/v.html", "u.html", pages).id == "u"
    assert resolve_link("elsewhere/page.html", "https://example.org/x/u.html/", pages).id == "u"
    assert resolve_link("uploads/page.md", "../docs/d.md", pages).id == "d"  # folders lost on upload
    assert resolve_link("uploads/page.md", "c.md", pages) is None  # two files called c.md: ambiguous
    assert resolve_link("site/docs/a.html", "#section", pages) is None
    workspace, ids = explored["workspace"], ids_by_title(explored["documents"])
    tools = {t.name: t for t in make_link_tools(workspace)}
    listing = tools["list_links"].invoke({"document_id": ids["RV Storm Petrel"]})
    observatory = ids["The Halvard Observatory"]
    assert listing.splitlines()[1] == \
        f"[1] link=halvard_observatory.html -> document_id={observatory} title=“The Halvard Observatory”"
    by_title = tools["follow_link"].invoke({"document_id": ids["RV Storm Petrel"], "link": "The Halvard Observatory"})
    assert by_title.startswith(f"document_id={ids['The Halvard Observatory']} title=“The Halvard Observatory” "
                               f"characters 0-")
    missing = tools["follow_link"].invoke({"document_id": ids["RV Storm Petrel"], "link": "ada_merrow.md"})
    assert missing.startswith("“RV Storm Petrel” has no link 'ada_merrow.md'; its links:")
    assert "no document with id 'nope'" in tools["list_links"].invoke({"document_id": "nope"})


# ---- the LLM engine on scripted models ------------------------------------------------------------

HARBOUR = """# Harbour Office

The Harbour Office of Skerry Island opened in 1872 and keeps the tide tables.
Read about [the lighthouse](brenna.md), [the museum](museum.md) and [the ferries](https://example.org/ferries).
"""
MUSEUM = "# Quay Museum\n\nThe Quay Museum has 14 rooms.\n"
LONELY = "# Lonely Page\n\nNobody links to this page, written in 1990.\n"


@pytest.fixture
def linked(settings: Settings, store: Store, index: VectorIndex) -> tuple[Workspace, dict[str, Document]]:
    workspace = Workspace(settings, store, index)
    documents = {name: add_document(workspace, f"{name}.md", text) for name, text in
                 (("harbour", HARBOUR), ("brenna", LIGHTHOUSE), ("museum", MUSEUM), ("lonely", LONELY))}
    return workspace, documents


def scripted_context(workspace: Workspace, generation: list, solver: list) -> tuple[GenerationContext, LLMEngine]:
    engine = LLMEngine(ScriptedChatModel.of(generation), ScriptedChatModel.of(solver), ScriptedChatModel.of([]),
                       model="scripted")
    return GenerationContext(workspace, engine, Usage(), run_id="run-llm"), engine


def fact(document: Document, answer: str, evidence: str) -> dict:
    return {"document_id": document.id, "answer": answer, "relation": f"the {answer}", "evidence": evidence}


def llm_exploration(workspace: Workspace, docs: dict[str, Document], extra_generation: list, solver: list
                    ) -> tuple[Exploration, GenerationContext, LLMEngine]:
    harbour, brenna = docs["harbour"], docs["brenna"]
    generation = [
        structured({"summary": "The Harbour Office links to a lighthouse and a museum.", "facts": [
            fact(harbour, "1872", "The Harbour Office of Skerry Island opened in 1872 and keeps the tide tables."),
            fact(harbour, "1999", "It was rebuilt in 1999.")]}),
        structured({"choice": 1, "reason": "a new page"}),
        reply("{'choice': oops"), reply("still not json"),
        structured({"summary": "The lighthouse was first lit in 1871.",
                    "facts": [fact(brenna, "14 March 1871", "It was first lit on 14 March 1871.")]}),
        *extra_generation,
    ]
    ctx, engine = scripted_context(workspace, generation, solver)
    exploration = explore_corpus(list(docs.values()), ctx, start_document_id=harbour.id, turns=2, steps_per_turn=2)
    return exploration, ctx, engine


def test_llm_explorer_chooses_links_summarises_and_survives_a_malformed_choice(linked: tuple) -> None:
    workspace, docs = linked
    exploration, ctx, engine = llm_exploration(workspace, docs, [], [])
    harbour, brenna = docs["harbour"], docs["brenna"]
    assert [(s.tool, s.reached) for s in exploration.steps] == [
        ("read_document", harbour.id), ("list_links", None), ("follow_link", brenna.id)]
    assert [p.document_id for p in exploration.memory.pages] == [harbour.id, brenna.id]
    assert exploration.memory.followed[0].link == "brenna.md"
    assert [(f.answer, f.span_start) for f in exploration.memory.facts] == [
        ("1872", harbour.text.index("1872")), ("14 March 1871", brenna.text.index("14 March 1871"))]  # 1999: unseen
    assert exploration.memory.summaries[-1] == "The lighthouse was first lit in 1871."
    [problem] = exploration.problems  # the turn ended; the exploration and its summary went on
    assert problem.startswith("turn 2: the explorer's output was malformed: No valid ExploreChoiceOut")
    assert exploration.model_calls == ctx.usage.calls == 5 and exploration.engine == "openai"
    choice_prompt = engine.generation.received[1][0].text
    assert "1. from “Harbour Office” follow brenna.md to “Brenna Light” (new page)" in choice_prompt
    assert "2. from “Harbour Office” follow museum.md to “Quay Museum” (new page)" in choice_prompt
    assert "ferries" not in choice_prompt and "Lonely" not in choice_prompt


def test_llm_writer_tasks_are_grounded_executed_and_a_malformed_candidate_fails_alone(linked: tuple) -> None:
    workspace, docs = linked
    harbour, brenna, museum = docs["harbour"], docs["brenna"], docs["museum"]

    def written(question: str, moves: list[tuple[str, str]], answer: str, page: Document, evidence: str = "") -> dict:
        return {"question": question, "start_document_id": harbour.id,
                "moves": [{"from_document_id": a, "to_document_id": b} for a, b in moves],
                "answers": [{"answer": answer, "document_id": page.id, "evidence": evidence}]}

    lit = "Start at the Harbour Office page and follow its link to the lighthouse: on what date was it first lit?"
    keeper = "Start at the Harbour Office page and follow its link to the lighthouse: who was its first keeper?"
    writer = structured({"tasks": [
        written(lit, [(harbour.id, brenna.id)], "14 March 1871", brenna, "It was first lit on 14 March 1871."),
        written("", [(harbour.id, brenna.id)], "38 metres", brenna),
        written("From the Harbour Office, open the museum: how many rooms?", [(harbour.id, museum.id)], "14 rooms",
                museum),
        written("From the Harbour Office, open the lighthouse: when did the keeper leave?", [(harbour.id, brenna.id)],
                "1905", brenna),
        written(keeper, [(harbour.id, brenna.id)], "Jonas Vell", brenna),
    ]})
    solver = [
        reply("I don't know."), call("list_links", {"document_id": harbour.id}, "l1"),
        call("follow_link", {"document_id": harbour.id, "link": "brenna.md"}, "f1"), reply("14 March 1871"),
        reply("I don't know."), call("read_document", {"document_id": brenna.id}, "r1"), reply("Jonas Vell"),
    ]
    malformed = [reply("nope")] * 4  # the navigation writer, twice (two attempts each)
    exploration, ctx, engine = llm_exploration(workspace, docs, [writer, *malformed], solver)
    tasks = generate_explore_tasks(exploration, ctx, guidelines=["information_retrieval", "navigation"])
    by_answer = {t.golden_answer: t for t in tasks}
    assert len(tasks) == 5 and {t.relation for t in tasks} == {"information_retrieval"}
    verified = by_answer["14 March 1871"]
    assert verified.status == "pending" and verified.question == lit and verified.hops == 2
    assert (verified.document_id, verified.span_start) == (brenna.id, brenna.text.index("14 March 1871"))
    assert verified.chunk_id == f"{brenna.id}:0" and verified.content_identifier == "Harbour Office"
    assert verified.verification.agent_steps == 2 and verified.model_calls == 4 and verified.model == "scripted"
    assert [s.tool for s in verified.trajectory if s.type == "tool"] == ["list_links", "follow_link"]
    assert engine.solver.received[1][0].text == EXPLORE_SOLVER_SYSTEM
    assert {answer: t.failure_reason for answer, t in by_answer.items() if t.status != "pending"} == {
        "38 metres": "the writer left out the question",
        "14 rooms": f"the page {museum.id!r} was not reached by the exploration",
        "1905": f"the answer “1905” was not seen on page {brenna.id!r}",
        "Jonas Vell": "executor did not visit the required page(s): “Harbour Office”",
    }
    assert by_answer["Jonas Vell"].verification.agent_answer == "Jonas Vell"
    writer_prompt = engine.generation.received[5][0].text  # the writer saw the trajectory and its memory
    assert "Page “Brenna Light”" in writer_prompt and EXPLORE_GUIDELINES["information_retrieval"] in writer_prompt
    assert "Memory: The lighthouse was first lit in 1871." in writer_prompt
    assert {EXPLORE_TASKS, EXPLORE_SOLVER_SYSTEM} <= set(PROMPT_TEXTS)  # the run's prompt version covers them
    with pytest.raises(NoExploreTasksError, match="navigation: the task writer's output was malformed"):
        generate_explore_tasks(exploration, ctx, guidelines=["navigation"])


class WriterCallFails(OfflineEngine):
    """The offline engine, except that the navigation writer's model call fails (a 502 beyond the retries)."""

    def write_explore_tasks(self, exploration: Exploration, guideline: str, limit: int,
                            usage: Usage) -> list[ExploreCandidate]:
        if guideline == "navigation":
            raise ModelCallFailed("The model endpoint http://127.0.0.1:9/v1 failed with HTTP 502 after 2 retries: "
                                  "bad gateway", hint="The server is failing; check its logs or try again later.")
        return super().write_explore_tasks(exploration, guideline, limit, usage)


def test_a_writer_call_that_failed_costs_its_guideline_and_alone_an_endpoint_error(explored: dict) -> None:
    ctx = dataclasses.replace(explored["ctx"], engine=WriterCallFails(), usage=Usage())
    made = generate_explore_tasks(explored["exploration"], ctx, guidelines=["retrieval", "navigation"])
    assert {t.relation for t in made} == {"retrieval"} and made
    # Nothing written and a call lost: the endpoint failed, not the exploration (the unit is left for a resume).
    with pytest.raises(ModelUnavailableError, match="failed with HTTP 502 after 2 retries: bad gateway") as lost:
        generate_explore_tasks(explored["exploration"], ctx, guidelines=["navigation"])
    assert type(lost.value) is ModelUnavailableError
