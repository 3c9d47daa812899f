"""The offline engine (engine="offline"): every step of the method as a deterministic function of
the text, with no model endpoint."""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel

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
from taskcraft_core.generate.offline import explore as explore_steps
from taskcraft_core.generate.offline import site as site_steps
from taskcraft_core.generate.offline.cloze import (
    BLANK,
    DESCRIPTION,
    DONT_KNOW,
    KIND_NOUNS,
    OFFLINE_MODEL,
    WIDTH_LINE,
    OfflinePolicyModel,
    aux_question,
    cloze_question,
    description,
    extract_answer,
    judge_answers,
    parse_cloze,
    quoted,
    width_question,
)
from taskcraft_core.generate.protocol import Check, Conclusion, Golden, Judgement, Superset
from taskcraft_core.generate.text import (
    canonical_form,
    fact_spans,
    mention_pattern,
    normalise_answer,
    sentences,
)
from taskcraft_core.index.vectors import Passage
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Chunk, Document


class OfflineEngine:
    """The deterministic engine (engine="offline"); every step is a pure function of the text."""

    name = "offline"
    model = OFFLINE_MODEL

    def __init__(self, max_conclusions: int = 20) -> None:
        self.max_conclusions = max_conclusions

    def identify(self, document: Document, usage: Usage) -> str:
        title = document.title
        if re.fullmatch(r"[\w\-. ]+\.\w{2,5}", title):
            title = re.sub(r"[_\-]+", " ", title.rsplit(".", 1)[0]).strip().title()
        return quoted(title)

    def extract_conclusions(self, identifier: str, document: Document, chunk: Chunk, usage: Usage) -> list[Conclusion]:
        found: list[Conclusion] = []
        known = [*document.aliases, document.page_title or "", document.site_name or ""]
        # Sentences read from the document's start, so a chunk that begins inside a code block knows it.
        in_chunk = [s for s in sentences(document.text[: chunk.end]) if s.start >= chunk.start]
        for sentence in in_chunk:
            for span in fact_spans(sentence.text, identifier, known):
                blanked = quoted(sentence.text[: span.start] + BLANK + sentence.text[span.end:])
                found.append(Conclusion(
                    answer=span.text, relation=f"the {KIND_NOUNS[span.kind]} in “{blanked}”", evidence=sentence.text,
                    span_start=sentence.start + span.start, span_end=sentence.start + span.end,
                    evidence_start=sentence.start,
                ))
        return found[: self.max_conclusions]

    def write_question(self, identifier: str, conclusion: Conclusion, usage: Usage) -> str:
        at = (conclusion.span_start or 0) - (conclusion.evidence_start or 0)
        span = next(s for s in fact_spans(conclusion.evidence, identifier) if s.start == at)
        return cloze_question(identifier, conclusion.evidence, span)

    def canonical_answer(self, question: str, conclusion: Conclusion, usage: Usage) -> str:
        return canonical_form(conclusion.answer)

    def answer_alone(self, question: str, usage: Usage) -> str:
        return DONT_KNOW  # without tools the offline engine has seen no document

    def judge(self, question: str, golden: Golden, answer: str, usage: Usage) -> Judgement:
        return judge_answers(golden, answer)

    def solver_model(self) -> BaseChatModel:
        return OfflinePolicyModel()

    def find_superset(self, identifier: str, passage: Passage, usage: Usage,
                      aliases: Sequence[str] = ()) -> Superset | None:
        """A sentence of another document that mentions the identifier (or one alias) exactly once: that
        document is the superset, the sentence around the mention the relation, the name as written
        there the auxiliary answer."""
        names = sorted({identifier, *aliases}, key=len, reverse=True)
        for sentence in sentences(passage.text):
            found = _mentions(sentence.text, names)
            if len(found) != 1:
                continue
            start, end = found[0]
            written = sentence.text[start:end]
            if written.startswith("`"):  # inline code: the blank keeps its quotes, the answer is the code
                inner = re.match(r"`([^`]+)`", written)
                start, end = (start + 1, start + 1 + len(inner[1])) if inner else (start, end)
            mention = sentence.text[start:end].strip("`")
            blanked = quoted(sentence.text[:start] + BLANK + sentence.text[end:])
            title = quoted(passage.title)
            return Superset(superset=title, relation=f"the subject of “{blanked}”",
                            aux_question=aux_question(title, blanked), description=description(title, blanked),
                            document_id=passage.document_id, evidence=sentence.text,
                            mention="" if normalise_answer(mention) == normalise_answer(identifier) else mention)
        return None

    def check_superset(self, identifier: str, superset: Superset, passages: Sequence[Passage], usage: Usage) -> Check:
        """The describing sentence, searched in the corpus, must be filled by the identifier (as the
        passage names it) and nothing else."""
        cloze = parse_cloze(superset.aux_question)
        if cloze is None:
            return Check(ok=False, reason="the auxiliary question cannot be read back")
        fillers = {normalise_answer(found) for p in passages if (found := extract_answer(p.text, cloze))}
        named = superset.mention or identifier
        if fillers != {normalise_answer(named)}:
            return Check(ok=False, reason=f"the relation does not point to exactly “{named}” "
                                          f"(it fits: {sorted(fillers) or 'nothing found'})")
        return Check(ok=True)

    def merge_depth(self, question: str, identifier: str, superset: Superset, usage: Usage) -> str:
        merged = question.replace(f"“{identifier}”", superset.description, 1)
        head, sep, statement = merged.rpartition("”, ")
        # Other mentions of the identifier in the asked statement become "it", so it stays hidden.
        return head + sep + re.sub(mention_pattern(identifier), "it", statement)

    def check_depth_merge(self, question: str, merged: str, identifier: str, answer: str, usage: Usage) -> Check:
        core = merged
        while DESCRIPTION.search(core):  # a hop over a hop nests descriptions: undo them innermost first
            core = DESCRIPTION.sub(f"“{identifier}”", core)
        if parse_cloze(core) is None or not DESCRIPTION.search(merged):
            return Check(ok=False, reason="the merged question no longer has the asked-for blank or description")
        return Check(ok=True)

    def merge_width(self, questions: Sequence[str], usage: Usage) -> str:
        return width_question(questions)

    def decompose_width(self, merged: str, usage: Usage) -> list[str]:
        return [text for _number, text in WIDTH_LINE.findall(merged)]

    # ---- exploration: a breadth-first explorer, span facts, task templates, a route-following policy

    def choose_explore_action(self, view: ExplorerView, usage: Usage) -> ExploreAction | None:
        return explore_steps.next_action(view)

    def summarise_exploration(self, previous: str, pages: Sequence[ObservedPage], usage: Usage) -> TurnSummary:
        return explore_steps.summarise(previous, pages, self.max_conclusions)

    def write_explore_tasks(self, exploration: Exploration, guideline: str, limit: int,
                            usage: Usage) -> list[ExploreCandidate]:
        return explore_steps.write_tasks(exploration, guideline, limit)

    def executor_model(self) -> BaseChatModel:
        return explore_steps.ExplorePolicyModel()

    # ---- a live website: searches with terms from the pages, goal templates, a goal-following policy

    def choose_site_action(self, view: SiteView, usage: Usage) -> ExploreAction | None:
        return site_steps.choose_site_action(view)

    def write_goal_tasks(self, exploration: SiteExploration, guideline: str, limit: int,
                         usage: Usage) -> list[GoalCandidate]:
        return site_steps.write_goal_tasks(exploration, guideline, limit)

    def site_executor_model(self) -> BaseChatModel:
        return site_steps.GoalPolicyModel()


def _mentions(sentence: str, names: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) of the names in a sentence (longest names first), articles left out."""
    found: list[tuple[int, int]] = []
    for name in names:
        for match in re.finditer(mention_pattern(name), sentence):
            start, end = match.span("name")
            if not any(start < e and s < end for s, e in found):
                found.append((start, end))
    return found
