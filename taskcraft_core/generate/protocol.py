"""The steps of the TaskCraft method as one protocol, with the records they pass: both engines
implement `Engine`."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from taskcraft_core.generate.explore.records import (
    Exploration,
    ExploreAction,
    ExploreCandidate,
    ExplorerView,
    GoalCandidate,
    ObservedPage,
    SiteExploration,
    SiteView,
    TurnSummary,
)
from taskcraft_core.index.vectors import Passage
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Chunk, Document

Golden = str | list[str]


class Conclusion(BaseModel):
    """One verifiable fact of a chunk: the answer, how to reach it, and where it is written."""

    answer: str
    relation: str
    evidence: str = Field(description="The sentence that states the fact.")
    span_start: int | None = Field(description="Offset of the answer in the document text; None when the "
                                               "answer could not be found in the text (not grounded).")
    span_end: int | None
    evidence_start: int | None = Field(None, description="Offset of the evidence sentence in the document text.")
    rejected_question: str = Field("", description="A question from this fact that a reviewer rejected.")
    feedback: str = Field("", description="The reviewer's reason: the question writer must fix it.")


class Judgement(BaseModel):
    """A judge's score (2 same, 1 all plus extra, 0 missing or contradicting) and why."""

    score: int = Field(ge=0, le=2)
    rationale: str = ""


class Superset(BaseModel):
    """What a backward search found: a broader thing that points uniquely to the identifier."""

    superset: str
    relation: str
    aux_question: str = Field(description="A question whose answer is the identifier.")
    description: str = Field(description="A phrase that replaces the identifier in a question.")
    document_id: str
    evidence: str = ""
    mention: str = Field("", description="The name by which the passage mentions the identifier (an alias such as "
                                         "'pickle' for 'pickle — Python object serialization'); the auxiliary "
                                         "question's answer. Empty: the identifier itself.")


class Check(BaseModel):
    """The outcome of a validity or semantic check."""

    ok: bool
    reason: str = ""


class Engine(Protocol):
    """The steps of the TaskCraft method; the offline and the LLM engine implement them all."""

    name: str
    model: str

    def identify(self, document: Document, usage: Usage) -> str: ...
    def extract_conclusions(
        self, identifier: str, document: Document, chunk: Chunk, usage: Usage
    ) -> list[Conclusion]: ...
    def write_question(self, identifier: str, conclusion: Conclusion, usage: Usage) -> str: ...
    def canonical_answer(self, question: str, conclusion: Conclusion, usage: Usage) -> str: ...
    def answer_alone(self, question: str, usage: Usage) -> str: ...
    def judge(self, question: str, golden: Golden, answer: str, usage: Usage) -> Judgement: ...
    def solver_model(self) -> BaseChatModel: ...
    def find_superset(self, identifier: str, passage: Passage, usage: Usage,
                      aliases: Sequence[str] = ()) -> Superset | None: ...
    def check_superset(
        self, identifier: str, superset: Superset, passages: Sequence[Passage], usage: Usage,
    ) -> Check: ...
    def merge_depth(self, question: str, identifier: str, superset: Superset, usage: Usage) -> str: ...
    def check_depth_merge(self, question: str, merged: str, identifier: str, answer: str, usage: Usage) -> Check: ...
    def merge_width(self, questions: Sequence[str], usage: Usage) -> str: ...
    def decompose_width(self, merged: str, usage: Usage) -> list[str]: ...
    # exploration (METHOD §2)
    def choose_explore_action(self, view: ExplorerView, usage: Usage) -> ExploreAction | None: ...
    def summarise_exploration(self, previous: str, pages: Sequence[ObservedPage], usage: Usage) -> TurnSummary: ...
    def write_explore_tasks(self, exploration: Exploration, guideline: str, limit: int,
                            usage: Usage) -> list[ExploreCandidate]: ...
    def executor_model(self) -> BaseChatModel: ...
    # exploration of a live website: the explorer's choice, the goal-style task writer, the executor
    def choose_site_action(self, view: SiteView, usage: Usage) -> ExploreAction | None: ...
    def write_goal_tasks(self, exploration: SiteExploration, guideline: str, limit: int,
                         usage: Usage) -> list[GoalCandidate]: ...
    def site_executor_model(self) -> BaseChatModel: ...
