"""Regenerate from a rejection (offline engine, and the LLM engine through the stub server) and
replay on a changed corpus: stale flags, kept trajectories, CLI outputs."""

from __future__ import annotations

import json

import pytest

from taskcraft_core.cli import main
from taskcraft_core.curate.replay import replay_tasks
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.generate.atomic import generate_atomic
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.factory import make_engine
from taskcraft_core.generate.regenerate import regenerate
from taskcraft_core.generate.verify import question_key
from taskcraft_core.ingest.pipeline import Source, delete_document, ingest_sources
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
from tests.prompt_following import PromptFollowingModel, message_text
from tests.stub_openai import StubOpenAI

HARBOUR = ("# Gull Point Harbour\n\nThe Gull Point lighthouse was first lit on 14 March 1887. "
           "Its lamp stands 42 metres above the sea. The harbour master in 1901 was Agnes Thorsen.\n")
REASON = "the question names the lamp height instead of asking about the lighthouse"


def open_with_harbour(settings: Settings, text: str = HARBOUR) -> Workspace:
    workspace = Workspace.open(settings)
    report = ingest_sources([Source(name="harbour.md", data=text.encode())], workspace)
    assert report.documents_added == 1
    return workspace


def atomic_tasks(workspace: Workspace, keep: int | None = None) -> list[Task]:
    """The document's verified atomic tasks; only the first `keep` are stored (a curated subset)."""
    document = workspace.store.get_document(workspace.store.list_documents()[0].id)
    assert document is not None
    ctx = GenerationContext(workspace, make_engine(workspace.settings), Usage())
    tasks = [t for chunk in workspace.store.get_chunks(document.id) for t in generate_atomic(document, chunk, ctx)]
    verified = [t for t in tasks if t.status == "pending"][:keep]
    workspace.store.add_tasks(verified)
    return verified


@pytest.fixture
def offline(settings: Settings) -> Workspace:
    return open_with_harbour(settings.with_changes(engine="offline"))


def test_offline_regeneration_picks_another_fact_verifies_it_and_links_the_pair(offline: Workspace) -> None:
    first, *_ = atomic_tasks(offline, keep=1)
    offline.store.record_review(first.id, "ann", "reject", reason=REASON)
    new = regenerate(offline, first.id)
    assert new.status == "pending" and new.failure_reason is None and new.verification.agent_score == 2
    assert (new.regenerated_from, new.regeneration_reason, new.parent_ids) == (first.id, REASON, [first.id])
    assert question_key(new.question) != question_key(first.question)
    assert new.span_start != first.span_start  # the offline engine picked another answer
    stored = offline.store.get_task(new.id)
    assert stored is not None and stored.regenerated_from == first.id
    assert offline.store.regenerations_of(first.id) == [new.id]


def test_only_a_rejected_task_with_evidence_regenerates(offline: Workspace) -> None:
    first, *_ = atomic_tasks(offline)
    with pytest.raises(TaskCraftError, match="is pending, not rejected"):
        regenerate(offline, first.id)
    with pytest.raises(TaskCraftError, match="No task with id nope"):
        regenerate(offline, "nope")


def test_cli_regenerate_json(offline: Workspace, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(offline.settings.home))
    monkeypatch.setenv("TASKCRAFT_ENGINE", "offline")
    first, *_ = atomic_tasks(offline, keep=1)
    assert main(["review", first.id, "--reject", "--reviewer", "ann"]) == 0
    capsys.readouterr()
    assert main(["regenerate", first.id, "--reason", "too easy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"task_id", "status", "parent"} and out["status"] == "pending" and out["parent"] == first.id
    assert offline.store.get_task(out["task_id"]).regeneration_reason == "too easy"
    assert main(["regenerate", out["task_id"], "--json"]) == 1
    assert "not rejected" in capsys.readouterr().err


def test_regeneration_says_so_when_every_fact_is_taken(offline: Workspace) -> None:
    tasks = atomic_tasks(offline)
    offline.store.record_review(tasks[0].id, "ann", "reject", reason=REASON)
    with pytest.raises(TaskCraftError, match="No new candidate could be made"):
        regenerate(offline, tasks[0].id)


class FeedbackFollowingModel(PromptFollowingModel):
    """Writes another question when the prompt carries a reviewer's reason (as a real model would)."""

    def question(self, prompt: str) -> str:
        question = super().question(prompt)
        if "The reviewer's reason:" not in prompt:
            return question
        reworded = question.replace("According to", "As recorded in", 1)
        with self.lock:
            self.answers[question_key(reworded)] = self.answers[question_key(question)]
        return reworded


def test_llm_regeneration_puts_the_reason_in_the_question_prompt(stub_settings: Settings,
                                                                  stub_openai: StubOpenAI) -> None:
    stub_openai.default = FeedbackFollowingModel()
    workspace = open_with_harbour(stub_settings.with_changes(engine="openai", max_candidates_per_chunk=2))
    first, *_ = atomic_tasks(workspace)
    workspace.store.record_review(first.id, "ann", "reject", reason=REASON)
    before = len(stub_openai.chat_requests)
    new = regenerate(workspace, first.id)
    prompts = [message_text(r.body["messages"][-1]) for r in stub_openai.chat_requests[before:]]
    question_prompt = next(p for p in prompts if p.startswith("Write one question"))
    assert f"The reviewer's reason: {REASON}" in question_prompt
    assert f"rejected an earlier question for this fact: “{first.question}”" in question_prompt
    assert not any("Give at most" in p for p in prompts)  # the fact was rebuilt, not extracted again
    assert new.question == first.question.replace("According to", "As recorded in", 1)
    assert (new.status, new.span_start, new.regenerated_from) == ("pending", first.span_start, first.id)


def test_replay_flags_tasks_whose_answer_changed_and_keeps_both_trajectories(offline: Workspace) -> None:
    tasks = atomic_tasks(offline)
    for task in tasks:
        offline.store.record_review(task.id, "ann", "accept")
    summary = replay_tasks(offline)
    assert (summary.replayed, summary.still_holds, summary.changed) == (len(tasks), len(tasks), [])
    # The corpus changes: the lighthouse was lit in another year (a new version of the document).
    changed_year = next(t for t in tasks if t.golden_answer == "1887-03-14")
    document_id = offline.store.list_documents()[0].id
    assert delete_document(offline, document_id)
    ingest_sources([Source(name="harbour.md", data=HARBOUR.replace("14 March 1887", "2 May 1889").encode())],
                   offline)
    summary = replay_tasks(offline, [changed_year.id])
    assert (summary.replayed, summary.still_holds, summary.changed) == (1, 0, [changed_year.id])
    stale = offline.store.get_task(changed_year.id)
    assert stale is not None and stale.stale and stale.trajectory == changed_year.trajectory
    latest = offline.store.replays_for(changed_year.id)[0]
    assert (latest.holds, latest.score, latest.answer) == (False, 0, "2 May 1889")
    assert latest.trajectory[-1].content == "2 May 1889" and latest.trajectory != stale.trajectory
    assert offline.store.stale_task_ids() == {changed_year.id}


def test_cli_replay_json_and_unknown_ids(offline: Workspace, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(offline.settings.home))
    monkeypatch.setenv("TASKCRAFT_ENGINE", "offline")
    tasks = atomic_tasks(offline)
    offline.store.record_review(tasks[0].id, "ann", "accept")
    assert main(["replay", "--status", "accepted", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"replayed": 1, "still_holds": 1, "changed": []}
    assert main(["replay", tasks[1].id, tasks[2].id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["replayed"] == 2
    assert main(["replay", "missing", "--json"]) == 1
    assert "No task with id missing" in capsys.readouterr().err
    assert offline.store.replays_for(tasks[0].id)[0].holds
