"""The steps of the method as one protocol, and the engine that performs them with chat models.

Each step of `LLMEngine` is: build messages (prompts.py), call `models.chat.invoke_structured` with a
pydantic schema, turn the result into our records. A malformed answer raises ModelOutputError for
that step only; the callers (atomic, depth, width) mark the one candidate failed and go on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from taskcraft_core.errors import ModelOutputError
from taskcraft_core.generate import prompts
from taskcraft_core.generate.explore.records import (
    CandidateAnswer,
    Exploration,
    ExploreAction,
    ExploreCandidate,
    ExplorerView,
    Fact,
    GoalAnswer,
    GoalCandidate,
    Move,
    ObservedPage,
    SiteExploration,
    SiteView,
    TurnSummary,
    locate_in_page,
)
from taskcraft_core.generate.protocol import Check, Conclusion, Golden, Judgement, Superset
from taskcraft_core.generate.text import match_score, normalise_answer
from taskcraft_core.index.vectors import Passage
from taskcraft_core.models.chat import Usage, invoke_structured, invoke_text, vote_samplers
from taskcraft_core.schema import Chunk, Document

# ---- structured outputs ---------------------------------------------------------------------


class SiteActionOut(BaseModel):
    tool: str = Field(description="open_link, go_back, read_page, type_and_submit, select_option, open_url or stop.")
    number: int | None = Field(None, description="The link's number (open_link) or the field's number.")
    text: str | None = Field(None, description="What to type (type_and_submit).")
    option: str | None = Field(None, description="The option to choose (select_option).")
    url: str | None = Field(None, description="A remembered link's URL (open_url).")
    reason: str = ""


class GoalAnswerOut(BaseModel):
    answer: str
    url: str
    evidence: str = ""


class GoalTaskOut(BaseModel):
    question: str
    pages: list[str] = Field(default_factory=list)
    answers: list[GoalAnswerOut]
    search: bool | None = None


class GoalTasksOut(BaseModel):
    tasks: list[GoalTaskOut]


class IdentifierOut(BaseModel):
    identifier: str = Field(description="The document's main subject, as a short title.")


class ConclusionOut(BaseModel):
    answer: str
    relation: str
    evidence: str


class ConclusionsOut(BaseModel):
    conclusions: list[ConclusionOut]


class QuestionOut(BaseModel):
    question: str


class AnswerOut(BaseModel):
    answer: str


class JudgeOut(BaseModel):
    # Field order is the order the model writes in: the rationale comes before the score it supports.
    rationale: str
    score: int = Field(ge=0, le=2, description="0, 1 or 2.")


class SupersetOut(BaseModel):
    found: bool
    superset: str = ""
    relation: str = ""
    aux_question: str = ""
    description: str = ""


class CheckOut(BaseModel):
    ok: bool
    reason: str


class QuestionsOut(BaseModel):
    questions: list[str]


class ExploreChoiceOut(BaseModel):
    choice: int = Field(description="The number of the link to follow; 0 to stop.")
    reason: str = ""


class ExploreFactOut(BaseModel):
    document_id: str
    answer: str
    relation: str
    evidence: str


class ExploreSummaryOut(BaseModel):
    summary: str
    facts: list[ExploreFactOut] = []


class ExploreMoveOut(BaseModel):
    from_document_id: str = ""
    to_document_id: str = ""


class ExploreAnswerOut(BaseModel):
    answer: str = ""
    document_id: str = ""
    evidence: str = ""


class ExploreTaskOut(BaseModel):
    # Lenient on purpose: one unusable task becomes one failed candidate, not a lost reply.
    question: str = ""
    start_document_id: str = ""
    moves: list[ExploreMoveOut] = []
    answers: list[ExploreAnswerOut] = []


class ExploreTasksOut(BaseModel):
    tasks: list[ExploreTaskOut]


class LLMEngine:
    """The method's steps performed by chat models (one each for generation, solving and judging)."""

    name = "openai"

    def __init__(self, generation: BaseChatModel, solver: BaseChatModel, judge: BaseChatModel, *,
                 judge_votes: int = 1, max_conclusions: int = 20, model: str = "") -> None:
        self.generation = generation
        self.solver = solver
        self.judge_model = judge
        self.judge_votes = judge_votes
        self.vote_models = vote_samplers(judge, judge_votes)
        self.max_conclusions = max_conclusions
        self.model = model or _model_names(generation, solver, judge)
        self._identifiers: dict[str, str] = {}
        self._lock = threading.Lock()

    def identify(self, document: Document, usage: Usage) -> str:
        """The document's identifier when it has a real one (ingestion took it from the H1 or the title
        without the site's affixes); otherwise the model names the main subject from the file name,
        page title, main heading and first paragraph (once per document)."""
        if not _looks_like_file_name(document.title, document.source):
            return document.title
        with self._lock:
            known = self._identifiers.get(document.id)
        if known:
            return known
        named = invoke_structured(self.generation, IdentifierOut, prompts.identify_messages(
            document.source, document.text, document.page_title, document.heading), usage=usage)
        identifier = named.identifier.strip() or document.title
        with self._lock:
            self._identifiers[document.id] = identifier
        return identifier

    def extract_conclusions(self, identifier: str, document: Document, chunk: Chunk, usage: Usage) -> list[Conclusion]:
        found = invoke_structured(
            self.generation, ConclusionsOut,
            prompts.conclusions_messages(identifier, chunk.text, self.max_conclusions), usage=usage,
        )
        return [locate_conclusion(c, chunk) for c in found.conclusions[: self.max_conclusions]]

    def write_question(self, identifier: str, conclusion: Conclusion, usage: Usage) -> str:
        out = invoke_structured(self.generation, QuestionOut, prompts.question_messages(
            identifier, conclusion.answer, conclusion.relation, conclusion.evidence,
            rejected=conclusion.rejected_question, feedback=conclusion.feedback), usage=usage)
        return _required(out.question, "question")

    def canonical_answer(self, question: str, conclusion: Conclusion, usage: Usage) -> str:
        out = invoke_structured(self.generation, AnswerOut, prompts.canonical_messages(
            question, conclusion.answer, conclusion.evidence), usage=usage)
        return _required(out.answer, "canonical answer")

    def answer_alone(self, question: str, usage: Usage) -> str:
        return invoke_text(self.solver, prompts.alone_messages(question), usage=usage).strip()

    def judge(self, question: str, golden: Golden, answer: str, usage: Usage) -> Judgement:
        """Exact normalised matches and empty answers are scored without a call; otherwise the mean
        of `judge_votes` judge calls, rounded; several votes are independent samples (`vote_samplers`)."""
        quick = quick_judgement(golden, answer)
        if quick is not None:
            return quick
        votes = [invoke_structured(voter, JudgeOut, prompts.judge_messages(question, golden, answer), usage=usage)
                 for voter in self.vote_models]
        score = round(sum(v.score for v in votes) / len(votes) + 1e-9)
        rationale = votes[0].rationale if len(votes) == 1 else \
            f"votes {', '.join(str(v.score) for v in votes)}: {votes[0].rationale}"
        return Judgement(score=score, rationale=rationale)

    def solver_model(self) -> BaseChatModel:
        return self.solver

    def find_superset(self, identifier: str, passage: Passage, usage: Usage,
                      aliases: Sequence[str] = ()) -> Superset | None:
        out = invoke_structured(self.generation, SupersetOut, prompts.superset_messages(
            identifier, passage.title, passage.text, aliases), usage=usage)
        if not out.found or not (out.superset.strip() and out.aux_question.strip() and out.description.strip()):
            return None
        return Superset(superset=out.superset.strip(), relation=out.relation.strip(),
                        aux_question=out.aux_question.strip(), description=out.description.strip(),
                        document_id=passage.document_id, evidence=passage.text)

    def check_superset(self, identifier: str, superset: Superset, passages: Sequence[Passage], usage: Usage) -> Check:
        out = invoke_structured(self.judge_model, CheckOut, prompts.superset_check_messages(
            identifier, superset.superset, superset.relation, superset.description, [p.text for p in passages]),
            usage=usage)
        return Check(ok=out.ok, reason=out.reason)

    def merge_depth(self, question: str, identifier: str, superset: Superset, usage: Usage) -> str:
        out = invoke_structured(self.generation, QuestionOut,
                                prompts.depth_merge_messages(question, identifier, superset.description), usage=usage)
        return _required(out.question, "merged question")

    def check_depth_merge(self, question: str, merged: str, identifier: str, answer: str, usage: Usage) -> Check:
        out = invoke_structured(self.judge_model, CheckOut,
                                prompts.depth_check_messages(question, merged, identifier, answer), usage=usage)
        return Check(ok=out.ok, reason=out.reason)

    def merge_width(self, questions: Sequence[str], usage: Usage) -> str:
        out = invoke_structured(self.generation, QuestionOut, prompts.width_merge_messages(questions), usage=usage)
        return _required(out.question, "merged question")

    def decompose_width(self, merged: str, usage: Usage) -> list[str]:
        out = invoke_structured(self.judge_model, QuestionsOut, prompts.width_decompose_messages(merged), usage=usage)
        return [q.strip() for q in out.questions if q.strip()]

    # ---- exploration ----------------------------------------------------------------------

    def choose_explore_action(self, view: ExplorerView, usage: Usage) -> ExploreAction | None:
        """The explorer model picks one of the links not followed yet (none left: stop, no call)."""
        if not view.frontier:
            return None
        out = invoke_structured(self.generation, ExploreChoiceOut, prompts.explore_action_messages(view), usage=usage)
        if out.choice == 0:
            return None
        if not 1 <= out.choice <= len(view.frontier):
            raise ModelOutputError(f"the explorer chose link {out.choice}, not one of 1..{len(view.frontier)}",
                                   hint="try again or use a stronger model")
        chosen = view.frontier[out.choice - 1]
        return ExploreAction(tool="follow_link", args={"document_id": chosen.from_id, "link": chosen.link})

    def summarise_exploration(self, previous: str, pages: Sequence[ObservedPage], usage: Usage) -> TurnSummary:
        """The model's summary and facts; a fact counts only where its answer is written in the
        observed text of its page (offsets from the text, never from the model)."""
        if not pages:
            return TurnSummary(summary=previous)
        out = invoke_structured(self.generation, ExploreSummaryOut,
                                prompts.explore_summary_messages(previous, pages, self.max_conclusions), usage=usage)
        by_id = {page.document_id: page for page in pages}
        facts = []
        for found in out.facts[: self.max_conclusions]:
            page = by_id.get(found.document_id.strip())
            span = locate_in_page(found.answer, found.evidence, page) if page else None
            if page is not None and span is not None:
                facts.append(Fact(document_id=page.document_id, answer=found.answer.strip(),
                                  relation=found.relation.strip(), evidence=found.evidence.strip(),
                                  span_start=span[0], span_end=span[1]))
        return TurnSummary(summary=out.summary.strip() or previous, facts=facts)

    def write_explore_tasks(self, exploration: Exploration, guideline: str, limit: int,
                            usage: Usage) -> list[ExploreCandidate]:
        out = invoke_structured(self.generation, ExploreTasksOut,
                                prompts.explore_tasks_messages(guideline, exploration, limit), usage=usage)
        return [_explore_candidate(task, guideline) for task in out.tasks[:limit]]

    def executor_model(self) -> BaseChatModel:
        return self.solver

    # ---- a live website ---------------------------------------------------------------------------

    def choose_site_action(self, view: SiteView, usage: Usage) -> ExploreAction | None:
        """The explorer model picks the next browser action; an action the page cannot take (a link or
        field number that is not there, a missing text) is malformed output."""
        out = invoke_structured(self.generation, SiteActionOut, prompts.site_action_messages(view), usage=usage)
        return site_action(out, view)

    def write_goal_tasks(self, exploration: SiteExploration, guideline: str, limit: int,
                         usage: Usage) -> list[GoalCandidate]:
        out = invoke_structured(self.generation, GoalTasksOut,
                                prompts.goal_tasks_messages(guideline, exploration, limit), usage=usage)
        return [_goal_candidate(task, guideline) for task in out.tasks[:limit]]

    def site_executor_model(self) -> BaseChatModel:
        return self.solver


def site_action(out: SiteActionOut, view: SiteView) -> ExploreAction | None:
    """The model's choice as an action the current page can take; ModelOutputError when it cannot."""
    tool = out.tool.strip()
    numbers = {"open_link": [link.number for link in view.links],
               "type_and_submit": [f["number"] for f in view.fields if f["kind"] != "select"],
               "select_option": [f["number"] for f in view.fields if f["kind"] == "select"]}
    if tool == "stop":
        return None
    if tool in ("go_back", "read_page"):
        return ExploreAction(tool=tool, args={})
    if tool == "open_url" and out.url and out.url.strip() in {link.url for link in view.known_links}:
        return ExploreAction(tool=tool, args={"url": out.url.strip()})
    if tool in numbers and out.number in numbers[tool]:
        args: dict[str, object] = {"number": out.number} if tool == "open_link" else {"field": out.number}
        if tool == "type_and_submit" and (out.text or "").strip():
            return ExploreAction(tool=tool, args=args | {"text": (out.text or "").strip()})
        if tool == "select_option" and out.option:
            return ExploreAction(tool=tool, args=args | {"option": out.option})
        if tool == "open_link":
            return ExploreAction(tool=tool, args=args)
    chosen = " ".join(part for part in (tool or "(nothing)", str(out.number or ""), out.url or "") if part)
    raise ModelOutputError(f"the explorer chose {chosen}, which the current page cannot do",
                           hint="try again or use a stronger model")


def _goal_candidate(task: GoalTaskOut, guideline: str) -> GoalCandidate:
    """A written website task as a candidate; what is missing makes it a candidate with a problem."""
    answers = [GoalAnswer(answer=a.answer.strip(), url=a.url.strip(), evidence=a.evidence.strip())
               for a in task.answers]
    missing = [what for what, empty in (("question", not task.question.strip()),
                                        ("answers", not answers or any(not a.answer or not a.url for a in answers)))
               if empty]
    return GoalCandidate(guideline=guideline, question=task.question.strip(),
                         pages=[url.strip() for url in task.pages if url.strip()] or [a.url for a in answers],
                         answers=answers, search=task.search,
                         problem=f"the writer left out the {', '.join(missing)}" if missing else None)


def _explore_candidate(task: ExploreTaskOut, guideline: str) -> ExploreCandidate:
    """A written task as a candidate; what is missing makes it a candidate with a problem."""
    answers = [CandidateAnswer(answer=a.answer.strip(), document_id=a.document_id.strip(), evidence=a.evidence.strip())
               for a in task.answers]
    missing = [what for what, empty in (("question", not task.question.strip()),
                                        ("start page", not task.start_document_id.strip()),
                                        ("answers", not answers or any(not a.answer for a in answers)))
               if empty]
    return ExploreCandidate(
        guideline=guideline, question=task.question.strip(), start_id=task.start_document_id.strip(),
        moves=[Move(from_id=m.from_document_id.strip(), to_id=m.to_document_id.strip()) for m in task.moves],
        answers=answers, problem=f"the writer left out the {', '.join(missing)}" if missing else None)


def quick_judgement(golden: Golden, answer: str) -> Judgement | None:
    """A score that needs no judge: an empty or 'don't know' answer is 0, an answer equal to the
    golden one after normalisation is 2. None when a judge must decide."""
    if not normalise_answer(answer) or normalise_answer(answer) in {"i don t know", "i do not know", "unknown"}:
        return Judgement(score=0, rationale="no answer given")
    if isinstance(golden, str) and match_score(golden, answer) == 2:
        return Judgement(score=2, rationale="same answer after normalisation")
    return None


def locate_conclusion(found: ConclusionOut, chunk: Chunk) -> Conclusion:
    """Ground a model's fact in the chunk: the answer must be written in the chunk, preferably inside
    the evidence sentence; offsets come from the text, never from the model (None: not grounded)."""
    answer = found.answer.strip()
    evidence_at = chunk.text.find(found.evidence.strip()) if found.evidence.strip() else -1
    search_from = evidence_at if evidence_at >= 0 else 0
    at = chunk.text.find(answer, search_from) if answer else -1
    if at < 0 or (evidence_at >= 0 and at > evidence_at + len(found.evidence.strip())):
        at = chunk.text.find(answer) if answer else -1
    if at < 0:
        return Conclusion(answer=answer, relation=found.relation.strip(), evidence=found.evidence.strip(),
                          span_start=None, span_end=None)
    return Conclusion(answer=answer, relation=found.relation.strip(), evidence=found.evidence.strip(),
                      span_start=chunk.start + at, span_end=chunk.start + at + len(answer),
                      evidence_start=chunk.start + evidence_at if evidence_at >= 0 else None)


def _required(text: str, what: str) -> str:
    if not text.strip():
        raise ModelOutputError(f"the model returned an empty {what}", hint="try again or use a stronger model")
    return text.strip()


def _looks_like_file_name(title: str, source: str) -> bool:
    return title == source.rsplit("/", 1)[-1] or "." in title[-6:] and " " not in title


def _model_names(*models: BaseChatModel) -> str:
    names = [getattr(m, "model_name", None) or type(m).__name__ for m in models]
    return "+".join(dict.fromkeys(names))
