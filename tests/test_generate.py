"""The method's steps with the LLM engine on scripted models (calls counted, malformed output costing
one candidate only) and the shared rules: acceptance, difficulty, depth checks, width alignment."""

from __future__ import annotations

import pytest

from taskcraft_core.errors import ModelCallFailed, ModelUnavailableError
from taskcraft_core.generate.atomic import NoCandidatesError, generate_atomic
from taskcraft_core.generate.context import AcceptanceRule, GenerationContext
from taskcraft_core.generate.depth import extend_depth, superset_problem
from taskcraft_core.generate.difficulty import difficulty
from taskcraft_core.generate.factory import make_engine
from taskcraft_core.generate.llm.engine import LLMEngine
from taskcraft_core.generate.offline.engine import OfflineEngine
from taskcraft_core.generate.prompts import PROMPT_VERSION
from taskcraft_core.generate.protocol import Superset
from taskcraft_core.generate.verify import verify
from taskcraft_core.generate.width import decomposition_problem, extend_width, group_for_width
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
from tests.generation_corpus import GUIDE, LIGHTHOUSE, NO_FACTS, add_document
from tests.scripted_model import ScriptedChatModel, call, reply, structured

FIRST_LIT = "It was first lit on 14 March 1871."
BAD_JSON = "{'question': oops"




def llm_context(workspace: Workspace, generation: list, solver: list, judge: list, votes: int = 1) -> GenerationContext:
    engine = LLMEngine(ScriptedChatModel.of(generation), ScriptedChatModel.of(solver), ScriptedChatModel.of(judge),
                       judge_votes=votes, model="scripted")
    return GenerationContext(workspace, engine, Usage(), run_id="run-1")


def conclusions(*facts: tuple[str, str, str]) -> dict:
    return {"conclusions": [{"answer": a, "relation": r, "evidence": e} for a, r, e in facts]}


def test_llm_atomic_counts_calls_and_a_malformed_candidate_costs_only_itself(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    chunk = workspace.store.get_chunks(document.id)[0]
    question = "According to the Brenna Light article, on what date was the lighthouse first lit?"
    ctx = llm_context(
        workspace,
        generation=[
            structured(
                conclusions(
                    ("14 March 1871", "the date the Brenna Light was first lit", FIRST_LIT),
                    ("Jonas Vell", "the first keeper of the Brenna Light", "Its first keeper was Jonas Vell"),
                )
            ),
            structured({"question": question}),
            structured({"answer": "1871-03-14"}),
            reply(BAD_JSON),
            reply(BAD_JSON),
        ],
        solver=[
            reply("I don't know."),
            call("search_corpus", {"query": "Brenna Light first lit"}),
            reply("It was first lit on 14 March 1871, in the evening.", tokens=30),
        ],
        judge=[
            structured({"score": 1, "rationale": "adds the evening"}),
            structured({"score": 2, "rationale": "same date"}),
            structured({"score": 1, "rationale": "extra"}),
        ],
        votes=3,
    )
    first, second = generate_atomic(document, chunk, ctx)
    assert first.status == "pending" and first.question == question and first.golden_answer == "1871-03-14"
    assert first.verification.agent_score == 1 and first.verification.model_alone_score == 0
    assert first.verification.judge_rationale == "model alone: no answer given; agent: votes 1, 2, 1: adds the evening"
    # question 1 + canonical 1 + alone 1 + agent 2 + judge votes 3 (the model-alone judge was a cheap check)
    assert (first.model_calls, first.tokens) == (8, 20 + 20 + 10 + 10 + 30 + 60)
    assert first.span_start == document.text.index("14 March 1871") and first.engine == "openai"
    assert first.model == "scripted" and first.run_id == "run-1"
    assert second.status == "failed_verification" and second.question == ""
    assert second.failure_reason.startswith("question writer output was malformed: No valid QuestionOut")
    assert second.model_calls == 2
    assert ctx.usage.calls == 1 + 8 + 2


def test_ungrounded_conclusions_fail_and_malformed_extraction_names_the_chunk(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    chunk = workspace.store.get_chunks(document.id)[0]
    building = conclusions(("1869", "the year building began", "Building began in 1869."))
    ctx = llm_context(workspace, [structured(building)],
                      [], [])
    [task] = generate_atomic(document, chunk, ctx)
    assert task.status == "failed_verification" and task.span_start is None
    assert task.failure_reason == "the answer “1869” is not written in the chunk (not grounded)"
    broken = llm_context(workspace, [reply("not json"), reply("")], [], [])
    malformed = "chunk 0 of “Brenna Light”: the conclusion extractor's output was malformed"
    with pytest.raises(NoCandidatesError, match=malformed):
        generate_atomic(document, chunk, broken)
    assert broken.usage.calls == 2


def test_a_document_without_facts_yields_no_candidates_and_says_why(workspace: Workspace) -> None:
    document = add_document(workspace, "musings.md", NO_FACTS)
    ctx = GenerationContext(workspace, OfflineEngine(), Usage())
    with pytest.raises(NoCandidatesError, match="chunk 0 of “Musings” has no extractable facts") as raised:
        generate_atomic(document, workspace.store.get_chunks(document.id)[0], ctx)
    assert "date, a number with a unit" in raised.value.hint


@pytest.mark.parametrize(
    ("rule", "agent", "alone", "accepted"),
    [(AcceptanceRule(), 2, 0, True), (AcceptanceRule(), 1, 0, True), (AcceptanceRule(), 0, 0, False),
     # Strict by default (the reference's rule): any credit for the model alone rejects.
     (AcceptanceRule(), 2, 1, False), (AcceptanceRule(), 1, 1, False), (AcceptanceRule(), 2, 2, False),
     (AcceptanceRule(max_alone_score=1), 2, 1, True), (AcceptanceRule(max_alone_score=1), 1, 1, False),
     (AcceptanceRule(min_agent_score=2), 1, 0, False),
     (AcceptanceRule(agent_must_beat_alone=False, max_alone_score=2), 2, 2, True)],
)
def test_acceptance_rule_is_explicit(rule: AcceptanceRule, agent: int, alone: int, accepted: bool) -> None:
    assert rule.accepts(agent, alone) is accepted


def test_acceptance_rule_comes_from_settings(settings: Settings) -> None:
    strict = AcceptanceRule.from_settings(settings.with_changes(accept_min_agent_score=2))
    lenient = AcceptanceRule.from_settings(settings.with_changes(accept_agent_must_beat_alone=False,
                                                                 accept_max_alone_score=2))
    loose = AcceptanceRule.from_settings(settings.with_changes(accept_max_alone_score=1))
    assert (strict.accepts(1, 0), strict.accepts(2, 0)) == (False, True)
    assert (lenient.accepts(2, 2), AcceptanceRule.from_settings(settings).accepts(2, 2)) == (True, False)
    assert (loose.accepts(2, 1), AcceptanceRule.from_settings(settings).accepts(2, 1)) == (True, False)
    assert settings.accept_max_alone_score == 0


def test_model_alone_answering_skips_the_agent_and_is_recorded(workspace: Workspace) -> None:
    ctx = llm_context(workspace, [], [reply("1871-03-14")], [])
    usage = Usage()
    outcome = verify("When was the Brenna Light first lit?", "1871-03-14", ctx, usage)
    assert not outcome.accepted and outcome.reason == "model alone answered it (score 2); agent not run"
    assert outcome.verification.model_alone_answer == "1871-03-14" and outcome.trajectory == []
    assert usage.calls == 1


def test_difficulty_formula_and_inputs() -> None:
    assert difficulty(1, 1, 2, 0)[0] == 1
    assert difficulty(1, 1, 3, 0)[0] == 2
    assert difficulty(2, 1, 4, 0)[0] == 2
    assert difficulty(1, 2, 4, 1)[0] == 1
    assert difficulty(3, 2, 12, 0)[0] == 4
    level, inputs = difficulty(2, 2, 9, 0)
    assert level == 4 and inputs["tool_steps"] == 9 and "formula" in inputs


def test_superset_checks_that_need_no_model() -> None:
    synonym = Superset(superset="the Brenna Light", relation="r", aux_question="q?", description="d", document_id="x")
    assert "another name" in superset_problem("Brenna Light", synonym, "merged?", "1871-03-14")
    real = synonym.model_copy(update={"superset": "Coast Guide"})
    assert superset_problem("Brenna Light", real, "Where is Brenna Light?", "1871") == \
        "the merged question still names the identifier “Brenna Light”"
    assert superset_problem("Brenna Light", real, "When, in 1871?", "1871") == "the merged question reveals the answer"
    assert superset_problem("Brenna Light", real, "When was it lit?", "1871") is None


def offline_atomic(workspace: Workspace) -> tuple[GenerationContext, list[Task]]:
    lighthouse = add_document(workspace, "brenna.md", LIGHTHOUSE)
    add_document(workspace, "guide.md", GUIDE)
    ctx = GenerationContext(workspace, OfflineEngine(), Usage())
    return ctx, generate_atomic(lighthouse, workspace.store.get_chunks(lighthouse.id)[0], ctx)


def test_depth_merges_retests_and_records_lineage(workspace: Workspace) -> None:
    ctx, atomic = offline_atomic(workspace)
    dated = next(t for t in atomic if t.golden_answer == "1871-03-14")
    [depth] = extend_depth(dated, ctx)
    assert depth.status == "pending" and depth.parent_ids == [dated.id] and depth.hops == 2
    # The article stays in the description ("The ___, painted ..."), only the name is blanked.
    assert depth.question == ("According to the document on what “Coast Guide” describes in “The ___, painted with red "
                              "bands, guards the entrance of the Skerry Sound.”, it was first lit on what date?")
    assert depth.content_identifier == "Coast Guide" and depth.golden_answer == "1871-03-14"
    # the merged question itself was re-tested: the agent answered it in one run of four tool steps
    assert depth.verification.agent_answer == "14 March 1871" and depth.verification.agent_steps == 4
    assert [s.hop for s in depth.trajectory if s.type == "human"] == [1, 0]


def test_width_groups_keep_their_own_answers(workspace: Workspace) -> None:
    ctx, atomic = offline_atomic(workspace)
    verified = [t for t in atomic if t.status == "pending"]
    groups = group_for_width(verified, ctx)
    assert len(groups) >= 2 and len({t.id for g in groups for t in g}) == 2 * len(groups)
    for group in groups:
        merged = extend_width(group, ctx)
        assert merged.golden_answer == [t.golden_answer for t in group]
        assert merged.parent_ids == [t.id for t in group] and merged.width == 2
        assert merged.status == "pending", merged.failure_reason


def test_width_refuses_groups_that_give_answers_away_and_distorted_merges(workspace: Workspace) -> None:
    ctx, atomic = offline_atomic(workspace)
    tall = next(t for t in atomic if t.golden_answer == "38 metres")
    seen = next(t for t in atomic if t.golden_answer == "22 nautical miles")
    assert "38 metres" in seen.question  # the same sentence: one question holds the other's answer
    assert group_for_width([tall, seen], ctx) == []
    problem = decomposition_problem(["When was it lit?"], ["a?", "b?"])
    assert problem == "the merged question splits into 1 questions, not 2"
    assert decomposition_problem(["When was the Brenna Light first lit?", "Who sank?"],
                                 ["When was the Brenna Light first lit?", "Who was the first keeper of the light?"]
                                 ).startswith("sub-question 2 is distorted")


def test_make_engine_picks_offline_without_an_endpoint_and_llm_with_one(settings: Settings) -> None:
    assert make_engine(settings).name == "offline"
    engine = make_engine(settings, "openai", model="tiny-model", base_url="http://127.0.0.1:9/v1")
    assert isinstance(engine, LLMEngine) and engine.model == "tiny-model"
    assert engine.solver_model().openai_api_base == "http://127.0.0.1:9/v1"
    assert len(PROMPT_VERSION) == 12 and int(PROMPT_VERSION, 16) >= 0


SUPERSET = {
    "found": True,
    "superset": "Coast Guide",
    "relation": "the lighthouse that guards the Skerry Sound",
    "aux_question": "Which lighthouse guards the entrance of the Skerry Sound, according to the Coast Guide?",
    "description": "the lighthouse that the Coast Guide says guards the entrance of the Skerry Sound",
}
MERGED = ("According to the article on the lighthouse that the Coast Guide says guards the entrance of the "
          "Skerry Sound, on what date was it first lit?")


def llm_depth(workspace: Workspace, superset_ok: bool) -> tuple[Task, list[Task], GenerationContext]:
    offline_ctx, atomic = offline_atomic(workspace)
    dated = next(t for t in atomic if t.golden_answer == "1871-03-14")
    ctx = llm_context(
        workspace,
        generation=[structured(SUPERSET), structured({"question": MERGED})],
        solver=[reply("I don't know."), call("search_corpus", {"query": "lighthouse Skerry Sound"}),
                reply("Brenna Light"),
                reply("I don't know."), reply("14 March 1871")],
        judge=[structured({"ok": superset_ok,
                           "reason": "fits only the Brenna Light" if superset_ok else "many lights"}),
               structured({"ok": True, "reason": "same answer"})],
    )
    return dated, extend_depth(dated, ctx), ctx


def test_llm_depth_hop_runs_every_check_and_counts_its_calls(workspace: Workspace) -> None:
    dated, [depth], ctx = llm_depth(workspace, superset_ok=True)
    assert depth.status == "pending" and depth.question == MERGED and depth.parent_ids == [dated.id]
    assert depth.verification.agent_answer == "14 March 1871" and depth.verification.agent_score == 2
    # superset 1 + merge 1 + validity 1 + auxiliary (alone 1 + agent 2) + semantic 1 + re-test (alone 1 + agent 1)
    assert depth.model_calls == 9
    assert [s.hop for s in depth.trajectory if s.type == "human"] == [1, 0]


def test_llm_superset_check_can_reject(workspace: Workspace) -> None:
    _dated, [depth], _ctx = llm_depth(workspace, superset_ok=False)
    assert depth.status == "failed_verification" and depth.failure_reason == "superset check: many lights"
    assert depth.question == MERGED and depth.model_calls == 3


class SupersetCallFails(OfflineEngine):
    """The offline engine, except that every superset search loses its model call (a 502 beyond the retries)."""

    def find_superset(self, *args: object, **kwargs: object) -> None:
        raise ModelCallFailed("The model endpoint http://127.0.0.1:9/v1 failed with HTTP 502 after 2 retries: "
                              "bad gateway", hint="The server is failing; check its logs or try again later.")


def test_a_depth_unit_whose_superset_calls_all_failed_is_an_endpoint_error(workspace: Workspace) -> None:
    _ctx, atomic = offline_atomic(workspace)
    dated = next(t for t in atomic if t.golden_answer == "1871-03-14")
    failing = GenerationContext(workspace, SupersetCallFails(), Usage())
    # Not "done with nothing": the executor counts it towards giving up on the endpoint, a resume redoes it.
    with pytest.raises(ModelUnavailableError, match="failed with HTTP 502 after 2 retries: bad gateway") as lost:
        extend_depth(dated, failing)
    assert type(lost.value) is ModelUnavailableError and "check its logs" in lost.value.hint
