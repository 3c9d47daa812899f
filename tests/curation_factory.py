"""Tasks and a workspace for the curation tests (export, import, near-duplicates, CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskcraft_core.schema import Task, TrajectoryStep, Verification

# (id, question, answer): copies, a light edit, a paraphrase, a same-template hard negative, unrelated.
QUESTIONS: list[tuple[str, str, str]] = [
    ("t1", "Which architect designed the Kelvingrove Concert Hall that opened in Glasgow in 1931?", "Alasdair Munro"),
    ("t2", "Which architect designed the Kelvingrove Concert Hall that opened in Glasgow in 1931?", "Alasdair Munro"),
    ("t3", "Who was the architect behind Glasgow's Kelvingrove Concert Hall, opened in 1931?", "Alasdair Munro"),
    ("t4", "Which architect designed the Queen's Park Library that opened in Glasgow in 1931?", "Margaret Reid"),
    ("t5", "What was the inflation rate in Estonia in 2008 according to the central bank's annual review?", "10.4%"),
    ("t6", "What was the inflation rate in Estonia in 2008, according to the central bank's annual review?", "10.4%"),
    ("t7", "How deep is Lake Vostrov at its deepest point, according to the 2003 hydrographic survey?", "312 m"),
    ("t8", "Which dataset did the authors of 'Contrastive Retrieval for Legal Documents' use for zero-shot transfer?",
     "CaseHOLD"),
    ("t9", "How many goals did Mirela Dragan score for the national team during the 2015 European qualifiers?", "9"),
    ("t10", "How many goals did Mirela Dragan score for the national team during the 2019 European qualifiers?", "6"),
]


def make_task(task_id: str, question: str, answer: str | list[str], **changes: Any) -> Task:
    """A verified task with a realistic trajectory: question, one tool call, its result, the answer."""
    values: dict[str, Any] = dict(
        id=task_id, kind="atomic", question=question, golden_answer=answer, content_identifier="Glasgow Hall",
        relation="architect of", engine="offline", model="offline-extractive", status="pending",
        trajectory=[
            TrajectoryStep(position=0, type="human", content=question),
            TrajectoryStep(position=1, type="ai", content="I will search the corpus.", tool="search_corpus",
                           args={"query": question[:40], "k": 3}),
            TrajectoryStep(position=2, type="tool", tool="search_corpus", args={"query": question[:40], "k": 3},
                           observation=f"... the answer is {answer} ..."),
            TrajectoryStep(position=3, type="ai", content=f"The answer is {answer}."),
        ],
        verification=Verification(model_alone_answer="I do not know", model_alone_score=0,
                                  agent_answer=str(answer), agent_score=2, judge_rationale="same", agent_steps=1),
    )
    values.update(changes)
    return Task(**values)


def question_tasks(**changes: Any) -> list[Task]:
    return [make_task(task_id, question, answer, **changes) for task_id, question, answer in QUESTIONS]




FIXTURES_PAIRS = Path(__file__).parent / "fixtures" / "paraphrase_pairs.jsonl"
