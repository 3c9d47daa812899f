"""Verification as strict as the method: the model alone must score 0, judge votes are real samples
with the rationale first, the canonical answer is re-grounded, a question must admit one answer,
depth runs its one-call checks before the auxiliary verification, and calls are counted by step."""

from __future__ import annotations

import json

import pytest

from taskcraft_core.generate import prompts
from taskcraft_core.generate.atomic import generate_atomic
from taskcraft_core.generate.depth import extend_depth
from taskcraft_core.generate.grounding import answer_kind, regrounding_problem, uniqueness_problem
from taskcraft_core.generate.llm.engine import JudgeOut, LLMEngine
from taskcraft_core.generate.protocol import Conclusion
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.models.chat import Usage, make_chat_model
from taskcraft_core.runs.service import run_summary
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.workspace import Workspace
from tests.generation_corpus import LIGHTHOUSE, add_document
from tests.prompt_following import PromptFollowingModel
from tests.scripted_model import reply, structured
from tests.stub_openai import StubOpenAI, text_reply
from tests.test_generate import MERGED, SUPERSET, conclusions, llm_context, offline_atomic
from tests.test_openai_pipeline import open_workspace, run_atomic

FIRST_LIT = "It was first lit on 14 March 1871."
QUESTION = "According to the Brenna Light article, on what date was the lighthouse first lit?"
RELIT = LIGHTHOUSE + "\nAfter the great storm the Brenna Light was first lit again on 2 May 1903, with a new lens.\n"


@pytest.fixture
def workspace(settings: Settings, store: Store, index: VectorIndex) -> Workspace:
    return Workspace(settings, store, index)


def fact(answer: str = "14 March 1871", evidence: str = FIRST_LIT,
         relation: str = "the date the Brenna Light was first lit") -> Conclusion:
    return Conclusion(answer=answer, relation=relation, evidence=evidence, span_start=0, span_end=len(answer))


def test_the_model_alone_is_asked_for_its_best_guess() -> None:
    [system, _question] = prompts.alone_messages("When was it first lit?")
    assert "best guess" in system.content and "I don't know" not in system.content


def test_judge_writes_its_rationale_before_its_score() -> None:
    assert list(JudgeOut.model_json_schema()["properties"]) == ["rationale", "score"]
    assert "First write your rationale" in prompts.JUDGE


def test_judge_votes_are_independent_samples_each_cached_on_its_own(stub_settings: Settings,
                                                                    stub_openai: StubOpenAI) -> None:
    settings = stub_settings.with_changes(cache_responses=True)
    judge = make_chat_model(settings, "judge")
    engine = LLMEngine(judge, judge, judge, judge_votes=3, model="stub")
    stub_openai.queue(*[text_reply(json.dumps({"rationale": f"vote {n}", "score": score}))
                        for n, score in ((1, 2), (2, 1), (3, 2))])
    usage = Usage()
    first = engine.judge(QUESTION, "1871-03-14", "March 1871", usage)
    assert (first.score, first.rationale) == (2, "votes 2, 1, 2: vote 1")
    bodies = [request.body for request in stub_openai.chat_requests]
    assert [(b["temperature"], b["seed"]) for b in bodies] == [(0.7, 0), (0.7, 1), (0.7, 2)]
    # Asked again: each vote replays its own cached answer (not vote 1 three times), at no cost.
    again = engine.judge(QUESTION, "1871-03-14", "March 1871", usage)
    assert (again.score, again.rationale) == (2, "votes 2, 1, 2: vote 1") and len(stub_openai.chat_requests) == 3
    assert usage.calls == 3
    single = make_chat_model(stub_settings, "judge")
    assert LLMEngine(single, single, single, judge_votes=1).vote_models == [single]


@pytest.mark.parametrize(("canonical", "problem"), [
    ("1871-03-14", False), ("14 march 1871", False), ("1871", False),
    ("1871-03-15", True), ("Jonas Vell", True),
])
def test_canonical_answer_is_regrounded_in_the_evidence(canonical: str, problem: bool) -> None:
    assert (regrounding_problem(canonical, fact()) is not None) is problem


def test_canonical_quantities_may_respell_units_and_numbers_but_not_change_them() -> None:
    tall = fact("38 metres", "The tower is 38 metres tall.", "the height of the tower")
    assert regrounding_problem("38 m", tall) is None and regrounding_problem("39 m", tall) is not None
    many = fact("2 million", "It welcomed 2 million visitors.", "the number of visitors")
    assert regrounding_problem("2000000", many) is None
    assert regrounding_problem("1063", fact("1,063", "It has 1,063 steps.", "the number of steps")) is None


def test_a_canonical_answer_that_left_the_evidence_fails_the_candidate(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    chunk = workspace.store.get_chunks(document.id)[0]
    ctx = llm_context(workspace, generation=[
        structured(conclusions(("14 March 1871", "the date the Brenna Light was first lit", FIRST_LIT))),
        structured({"question": QUESTION}), structured({"answer": "1871-03-15"})], solver=[], judge=[])
    [task] = generate_atomic(document, chunk, ctx)
    assert task.status == "failed_verification" and task.model_calls == 2  # question and canonical answer
    assert task.failure_reason.startswith(
        "the canonical answer “1871-03-15” no longer matches the evidence “14 March 1871”")


def test_a_relation_that_holds_for_another_value_of_the_document_is_not_unique(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", RELIT)
    chunks = workspace.store.get_chunks(document.id)
    problem = uniqueness_problem(fact(), "Brenna Light", chunks)
    assert problem == ("not unique: the relation “the date the Brenna Light was first lit” also holds for "
                       "“2 May 1903” in the same document: After the great storm the Brenna Light was first lit "
                       "again on 2 May 1903, with a new lens.")
    ctx = llm_context(workspace, generation=[
        structured(conclusions(("14 March 1871", "the date the Brenna Light was first lit", FIRST_LIT))),
        structured({"question": QUESTION}), structured({"answer": "1871-03-14"})], solver=[], judge=[])
    [task] = generate_atomic(document, chunks[0], ctx)
    assert task.status == "failed_verification" and task.failure_reason == problem


@pytest.mark.parametrize(("answer", "evidence", "relation"), [
    ("14 March 1871", FIRST_LIT, "the date the Brenna Light was first lit"),
    ("Jonas Vell", "Its first keeper was Jonas Vell, who kept the light until 1902.",
     "the first keeper of the Brenna Light"),
    ("38 metres", "The tower is 38 metres tall and its lamp can be seen from 22 nautical miles away.",
     "the height of the Brenna Light's tower"),
])
def test_a_relation_with_one_value_is_unique(workspace: Workspace, answer: str, evidence: str, relation: str) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    chunks = workspace.store.get_chunks(document.id)
    assert uniqueness_problem(fact(answer, evidence, relation), "Brenna Light", chunks) is None


def test_depth_runs_the_semantic_check_before_the_auxiliary_verification(workspace: Workspace) -> None:
    _offline, atomic = offline_atomic(workspace)
    dated = next(t for t in atomic if t.golden_answer == "1871-03-14")
    ctx = llm_context(
        workspace,
        generation=[structured(SUPERSET), structured({"question": MERGED})],
        solver=[],  # the auxiliary question's model alone and agent are never asked
        judge=[structured({"ok": True, "reason": "fits only the Brenna Light"}),
               structured({"ok": False, "reason": "asks for another date"})],
    )
    [depth] = extend_depth(dated, ctx)
    assert depth.status == "failed_verification" and depth.failure_reason == "semantic check: asks for another date"
    assert depth.model_calls == 4
    assert ctx.usage.by_step == {"superset": 1, "depth_merge": 1, "superset_check": 1, "semantic_check": 1}


def test_a_run_records_its_calls_by_step(stub_settings: Settings, stub_openai: StubOpenAI) -> None:
    stub_openai.default = PromptFollowingModel()
    workspace = open_workspace(stub_settings)
    run = run_atomic(workspace)
    steps = run.counts.calls_by_step
    assert sum(steps.values()) == run.model_calls
    assert {"atomic.conclusions", "atomic.question", "atomic.canonical", "atomic.model_alone",
            "atomic.agent"} <= set(steps)
    summary = run_summary(run)
    calls = summary.calls
    assert calls["total"] == run.model_calls
    assert calls["per_verified"] == round(run.model_calls / summary.accepted, 2)
    assert calls["per_candidate_by_step"]["atomic.question"] == round(steps["atomic.question"] / summary.candidates, 2)


def test_llm_candidate_judged_with_credit_for_the_model_alone_is_rejected(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    chunk = workspace.store.get_chunks(document.id)[0]
    ctx = llm_context(workspace, generation=[
        structured(conclusions(("14 March 1871", "the date the Brenna Light was first lit", FIRST_LIT))),
        structured({"question": QUESTION}), structured({"answer": "1871-03-14"})],
        solver=[reply("March 1871, I believe")],
        judge=[structured({"rationale": "right month and year, all of it plus more", "score": 1})])
    [task] = generate_atomic(document, chunk, ctx)
    # Before: accepted when the agent then scored 2. Now the model alone's 1 rejects at once.
    assert task.status == "failed_verification"
    assert task.failure_reason == "model alone answered it (score 1); agent not run"


def test_every_kind_of_fact_span_has_a_family_for_the_uniqueness_check() -> None:
    # A span kind without a family failed every unit that met one ("KeyError: 'code'" on real docs pages).
    from taskcraft_core.generate.grounding import KIND_FAMILY
    from taskcraft_core.generate.text import SPAN_PATTERNS

    assert {kind for kind, _ in SPAN_PATTERNS} <= set(KIND_FAMILY)
    evidence = "If the data being deserialized is not a valid JSON document, a `JSONDecodeError` will be raised."
    assert answer_kind("JSONDecodeError", evidence, "json") == "code"
