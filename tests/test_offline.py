"""The offline engine end to end on the sample corpus: atomic, depth and width tasks, every accepted
one grounded (its golden answer in the cited span and in an observation), ids deterministic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from taskcraft_core.generate.atomic import NoCandidatesError, generate_atomic
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.depth import extend_depth
from taskcraft_core.generate.factory import make_engine
from taskcraft_core.generate.offline.cloze import OFFLINE_MODEL, cloze_question, extract_answer, parse_cloze
from taskcraft_core.generate.text import contains_answer, fact_spans
from taskcraft_core.generate.width import extend_width, group_for_width
from taskcraft_core.ingest.pipeline import load_sample_corpus
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace

DEPTH_SAMPLE = 12


def generate_atomic_all(workspace: Workspace, ctx: GenerationContext) -> list[Task]:
    tasks: list[Task] = []
    for summary in workspace.store.list_documents():
        document = workspace.store.get_document(summary.id)
        for chunk in workspace.store.get_chunks(summary.id):
            try:
                tasks += generate_atomic(document, chunk, ctx)
            except NoCandidatesError:
                pass
    return tasks


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = Settings(home=tmp_path_factory.mktemp("offline") / "home")
    workspace = Workspace.open(settings)
    load_sample_corpus(workspace)
    ctx = GenerationContext(workspace, make_engine(settings), Usage())
    atomic = generate_atomic_all(workspace, ctx)
    verified = [t for t in atomic if t.status == "pending"]
    depth = [d for t in verified[:DEPTH_SAMPLE] for d in extend_depth(t, ctx)]
    width = [extend_width(group, ctx) for group in group_for_width(atomic, ctx)[:10]]
    workspace.store.add_tasks(atomic + depth + width)
    return {"workspace": workspace, "atomic": atomic, "depth": depth, "width": width}


def test_every_kind_is_produced_and_accepted_by_the_offline_engine(generated: dict) -> None:
    for kind in ("atomic", "depth", "width"):
        statuses = Counter(t.status for t in generated[kind])
        assert statuses["pending"] >= 3, (kind, statuses)
        assert {(t.engine, t.model) for t in generated[kind]} == {("offline", OFFLINE_MODEL)}
    atomic_pending = [t for t in generated["atomic"] if t.status == "pending"]
    assert len(atomic_pending) / len(generated["atomic"]) > 0.8


def test_failed_candidates_are_kept_with_a_reason(generated: dict) -> None:
    failed = [t for t in generated["atomic"] + generated["depth"] if t.status == "failed_verification"]
    assert failed and all(t.failure_reason for t in failed)
    assert any(t.failure_reason == "the question reveals its answer" for t in failed)


def test_every_accepted_atomic_and_depth_task_is_grounded_in_its_span_and_its_trajectory(generated: dict) -> None:
    store = generated["workspace"].store
    for task in [t for t in generated["atomic"] + generated["depth"] if t.status == "pending"]:
        document = store.get_document(task.document_id)
        chunk = store.get_chunk(task.chunk_id)
        assert chunk.start <= task.span_start < task.span_end <= chunk.end
        assert contains_answer(task.golden_answer, document.text[task.span_start:task.span_end]), task.id
        observations = [s.observation for s in task.trajectory if s.type == "tool"]
        assert any(contains_answer(task.golden_answer, o) for o in observations), task.id
        assert task.verification.model_alone_score == 0 and task.verification.agent_score >= 1


def test_every_accepted_width_task_is_grounded_through_its_parents(generated: dict) -> None:
    store = generated["workspace"].store
    for task in [t for t in generated["width"] if t.status == "pending"]:
        parents = store.get_tasks(task.parent_ids)
        assert task.golden_answer == [p.golden_answer for p in parents]
        for answer, parent in zip(task.golden_answer, parents, strict=False):
            span = store.get_document(parent.document_id).text[parent.span_start:parent.span_end]
            assert contains_answer(answer, span)
            assert any(contains_answer(answer, s.observation) for s in task.trajectory if s.type == "tool")
        assert task.question.count("According to") == len(parents) == task.width


def test_depth_tasks_hide_the_identifier_and_chain_hops_innermost_first(generated: dict) -> None:
    by_id = {t.id: t for t in generated["atomic"] + generated["depth"]}
    accepted = [t for t in generated["depth"] if t.status == "pending"]
    for task in accepted:
        parent = by_id[task.parent_ids[0]]
        assert task.hops == parent.hops + 1 and task.golden_answer == parent.golden_answer
        assert not contains_answer(parent.content_identifier, task.question)
        hops = [s.hop for s in task.trajectory]
        assert hops == sorted(hops, reverse=True) and hops[0] == task.hops - 1
        assert [s.position for s in task.trajectory] == list(range(len(task.trajectory)))
        assert task.difficulty >= 2 and task.difficulty_inputs["hops"] == task.hops


def test_generation_is_deterministic(generated: dict, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "again")
    workspace = Workspace.open(settings)
    load_sample_corpus(workspace)
    ctx = GenerationContext(workspace, make_engine(settings), Usage())
    document = workspace.store.get_document(workspace.store.list_documents()[0].id)
    again = generate_atomic(document, workspace.store.get_chunks(document.id)[0], ctx)
    first = {t.id: t for t in generated["atomic"]}
    assert again and all(first[t.id].question == t.question and first[t.id].golden_answer == t.golden_answer
                         for t in again)
    assert [t.status for t in again] == [first[t.id].status for t in again]


def test_questions_read_as_questions_and_the_policy_reads_their_answers_back() -> None:
    sentence = "The tower is 38 metres tall and was first lit on 14 March 1871."
    spans = {s.kind: s for s in fact_spans(sentence, "Brenna Light")}
    question = cloze_question("Brenna Light", sentence, spans["quantity"])
    assert (
        question == "According to “Brenna Light”, the tower is how many metres tall and was first lit on 14 March 1871?"
    )
    dated = cloze_question("Brenna Light", sentence, spans["date"])
    assert dated == "According to “Brenna Light”, the tower is 38 metres tall and was first lit on what date?"
    assert extract_answer(f"Intro. {sentence} More.", parse_cloze(question)) == "38 metres"
    assert extract_answer(f"Intro. {sentence} More.", parse_cloze(dated)) == "14 March 1871"


def test_task_ids_are_unique_and_content_derived(generated: dict) -> None:
    tasks = generated["atomic"] + generated["depth"] + generated["width"]
    assert len({t.id for t in tasks}) == len(tasks)
    store = generated["workspace"].store
    assert store.add_tasks(tasks) == 0  # stored once by the fixture: a re-run adds nothing
