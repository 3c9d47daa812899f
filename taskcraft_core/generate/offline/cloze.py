"""The offline engine: the same method, with deterministic steps and no model endpoint.

Facts are spans (dates, numbers with units, years, proper names) in sentences of the real text; a
question is the sentence turned into a question by putting a wh-phrase where the span was
("According to “Eiffel Tower”, the tower is how many metres tall?"); the judge matches normalised
answers; the model alone knows nothing. The solver is the real LangChain agent loop driven by
`OfflinePolicyModel`, a chat model that searches the corpus, reads the best passage and reads the
answer off the observation, one hop (and one sub-question) at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from taskcraft_core.agent.tools import parse_passages
from taskcraft_core.generate.protocol import Golden, Judgement
from taskcraft_core.generate.text import (
    DATE,
    MONEY,
    NAME,
    NUMBER,
    PERCENT,
    SCALE,
    UNITS,
    YEAR,
    Span,
    canonical_form,
    match_score,
)

OFFLINE_MODEL = "offline-policy"
DONT_KNOW = "I don't know."
NOT_FOUND = "I could not find the answer in the documents."
BLANK = "___"
CONTEXT_SIZES = (6, 4, 3, 2, 1)  # neighbouring words tried on each side of the wh-phrase
ARTICLE = r"(?:[Tt]he\s+|[Aa]n?\s+)?"
# The description a depth merge puts where an identifier was; the innermost one names a title.
DESCRIPTION = re.compile(r"the document on what “(?P<title>[^“”]+)” describes in “(?P<blanked>[^“”]*___[^“”]*)”")
CLOZE = re.compile(r"^According to “(?P<title>[^“”]+)”, (?P<statement>.+)\?$", re.DOTALL)
WIDTH_LINE = re.compile(r"^(\d+)\. (.+)$", re.MULTILINE)
WIDTH_LEADS = {2: "Answer both questions, in order:", 3: "Answer all three questions, in order:"}
# Wh-phrases, most specific first; each says which kind of span fills its place.
WH_PHRASES: list[tuple[str, str]] = [
    ("date", r"\bwhat date\b"), ("year", r"\bwhat year\b"), ("money", r"\bhow much money\b"),
    ("percent", r"\bwhat percentage\b"), ("quantity", rf"\bhow many (?P<noun>{UNITS})\b"),
    ("name", r"\bwho or what\b"), ("name", r"\bwhom\b"), ("name", r"\bwhat\b"),
]
WH_BY_KIND = {"date": "what date", "year": "what year", "money": "how much money", "percent": "what percentage"}
KIND_PATTERNS = {"date": DATE, "year": YEAR, "money": MONEY, "percent": PERCENT, "name": rf"{ARTICLE}{NAME}"}
KIND_NOUNS = {"date": "date", "year": "year", "money": "amount", "percent": "percentage", "quantity": "quantity",
              "name": "name"}
LOWER_OPENERS = {"the", "a", "an", "in", "on", "at", "it", "its", "this", "that", "these", "those", "there", "by",
                 "after", "before", "during", "since", "from", "with", "for", "when", "while", "although", "as",
                 "he", "she", "they", "his", "her", "their", "each", "construction", "today"}


def quoted(text: str) -> str:
    """Text safe to put between “ ” (its own quote marks become plain ones)."""
    return " ".join(re.sub(r"[“”]", '"', text).split())


def _decapitalise(statement: str) -> str:
    first, _, rest = statement.partition(" ")
    return f"{first.lower()} {rest}".strip() if first.lower() in LOWER_OPENERS else statement


def wh_phrase(span: Span, left: str) -> str:
    if span.kind == "quantity":
        return f"how many {span.unit}"
    if span.kind == "name":
        if not left:
            return "who or what"
        return "whom" if left.split()[-1].lower() == "by" else "what"
    return WH_BY_KIND[span.kind]


def statement_with_blank(sentence: str, start: int, end: int, wh: Callable[[str], str]) -> str:
    """The sentence as a statement whose fact is replaced by a wh-phrase (a trailing article goes)."""
    left = sentence[:start].strip()
    right = sentence[end:].strip().rstrip(".!").strip()
    left = re.sub(r"(?:^|\s)(?:[Tt]he|[Aa]n?)$", "", left).strip()
    return _decapitalise(" ".join(part for part in (left, wh(left), right) if part).replace(" ,", ","))


def cloze_question(title: str, sentence: str, span: Span) -> str:
    statement = statement_with_blank(quoted(sentence), span.start, span.end, lambda left: wh_phrase(span, left))
    return f"According to “{quoted(title)}”, {statement}?"


@dataclass(frozen=True)
class Cloze:
    """A parsed offline question: the words around the wh-phrase and the kind of span it asks for."""

    left: str
    right: str
    pattern: str


def parse_cloze(question: str) -> Cloze | None:
    match = CLOZE.match(question.strip())
    if not match:
        return None
    statement = match["statement"]
    for kind, phrase in WH_PHRASES:
        found = re.search(phrase, statement)
        if found:
            noun = found.groupdict().get("noun")
            pattern = rf"{NUMBER}(?:\s+{SCALE})?\s+{re.escape(noun)}" if noun else KIND_PATTERNS[kind]
            return Cloze(statement[: found.start()].strip(), statement[found.end():].strip(), pattern)
    return None


def _context(words: str) -> str:
    return r"\s*".join(re.escape(token) for token in re.findall(r"\w+|[^\w\s]", words))


@lru_cache(maxsize=4096)  # the stateless policy re-reads the same observations on every turn
def match_answer(text: str, cloze: Cloze) -> tuple[str, int] | None:
    """The span of `text` that sits where the question's wh-phrase is, found with the question's
    neighbouring words (fewer and fewer of them, for rewritten questions) and the kind's pattern;
    with the number of context words that matched (more is surer). Fewer than two is never enough."""
    left_words, right_words = cloze.left.split(), cloze.right.split()
    for size in CONTEXT_SIZES:
        left, right = " ".join(left_words[-size:]), " ".join(right_words[:size])
        strength = len(left.split()) + len(right.split())
        if strength < 2:
            return None
        pattern = (rf"(?i:{_context(left)})\s*" if left else "") + rf"(?P<answer>{cloze.pattern})" + \
            (rf"\s*(?i:{_context(right)})" if right else "")
        found = re.search(pattern, text)
        if found:
            return " ".join(found["answer"].split()), strength
    return None


def extract_answer(text: str, cloze: Cloze) -> str | None:
    matched = match_answer(text, cloze)
    return matched[0] if matched else None


# ---- the solving policy -----------------------------------------------------------------------


class _NeedTool(Exception):
    """The policy needs one more observation: it asks for this tool call."""

    def __init__(self, tool: str, args: dict[str, Any]) -> None:
        super().__init__(tool)
        self.tool = tool
        self.arguments = args


def _replay(observations: Sequence[str]) -> Callable[[str, dict[str, Any]], str]:
    """A tool caller that answers from the observations already in the conversation, in order, and
    asks for the next call once they are used up."""
    remaining = list(observations)

    def call(tool: str, args: dict[str, Any]) -> str:
        if remaining:
            return remaining.pop(0)
        raise _NeedTool(tool, args)

    return call


def find_answer(question: str, call: Callable[[str, dict[str, Any]], str]) -> str | None:
    """One hop: search with the question, read the passage that holds the pattern, read the answer."""
    cloze = parse_cloze(question)
    if cloze is None:
        return None
    passages = parse_passages(call("search_corpus", {"query": question, "k": 5}))
    if not passages:
        return None
    strengths = [(matched[1] if (matched := match_answer(p.text, cloze)) else 0) for p in passages]
    best = passages[strengths.index(max(strengths))]
    page = call("read_document", {"document_id": best.document_id, "start": best.start, "end": best.end})
    return extract_answer(page, cloze)


def solve_single(question: str, call: Callable[[str, dict[str, Any]], str]) -> str | None:
    """Resolve the innermost description first (each is a hop), then answer the core question."""
    while match := DESCRIPTION.search(question):
        aux = aux_question(match["title"], match["blanked"])
        identifier = find_answer(aux, call)
        if identifier is None:
            return None
        question = f"{question[: match.start()]}“{canonical_form(identifier)}”{question[match.end():]}"
    return find_answer(question, call)


def solve(question: str, call: Callable[[str, dict[str, Any]], str]) -> str:
    parts = WIDTH_LINE.findall(question)
    if parts:
        return "\n".join(f"{number}. {solve_single(part, call) or 'unknown'}" for number, part in parts)
    return solve_single(question, call) or NOT_FOUND


class OfflinePolicyModel(BaseChatModel):
    """A deterministic chat model that solves offline questions with search_corpus and read_document.
    Stateless: each turn replays the conversation's observations to know where it is."""

    @property
    def _llm_type(self) -> str:
        return OFFLINE_MODEL

    def bind_tools(self, tools: Any, **kwargs: Any) -> OfflinePolicyModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=policy_reply(messages, solve))])


Solver = Callable[[str, Callable[[str, dict[str, Any]], str]], str]
"""A deterministic solver: the question and a tool caller in, the final answer out."""


def policy_reply(messages: Sequence[BaseMessage], solver: Solver) -> AIMessage:
    """The policy's next message: the solver replays the conversation's observations and either
    answers or asks for the tool call it needs next."""
    question = next((m.text for m in messages if isinstance(m, HumanMessage)), "")
    observations = [m.text for m in messages if isinstance(m, ToolMessage)]
    try:
        return AIMessage(content=solver(question, _replay(observations)))
    except _NeedTool as need:
        return AIMessage(content="", tool_calls=[
            {"name": need.tool, "args": need.arguments, "id": f"offline-{len(observations)}", "type": "tool_call"}])


# ---- depth and width wording ------------------------------------------------------------------


def aux_question(title: str, blanked: str) -> str:
    at = blanked.index(BLANK)
    statement = statement_with_blank(blanked, at, at + len(BLANK), lambda left: "who or what" if not left else "what")
    return f"According to “{title}”, {statement}?"


def description(title: str, blanked: str) -> str:
    return f"the document on what “{title}” describes in “{blanked}”"


def mention_pattern(identifier: str) -> str:
    """The identifier as written in running text, with an optional article and either first case."""
    head, tail = identifier[:1], re.escape(identifier[1:])
    return rf"(?<!\w){ARTICLE}[{re.escape(head.upper())}{re.escape(head.lower())}]{tail}(?!\w)"


def width_question(questions: Sequence[str]) -> str:
    lead = WIDTH_LEADS.get(len(questions), f"Answer all {len(questions)} questions, in order:")
    return "\n".join([lead, *(f"{n}. {q}" for n, q in enumerate(questions, start=1))])


def judge_answers(golden: Golden, answer: str) -> Judgement:
    """Normalised matching; a list of golden answers is matched part by part (the lowest part counts)."""
    if isinstance(golden, str):
        score = match_score(golden, answer)
        return Judgement(score=score, rationale=("same answer" if score == 2 else "answer contains the golden answer"
                                                 if score == 1 else "answer does not contain the golden answer"))
    parts = [text for _number, text in WIDTH_LINE.findall(answer)]
    if len(parts) != len(golden):
        return Judgement(score=0, rationale=f"expected {len(golden)} numbered answers, got {len(parts)}")
    scores = [match_score(g, a) for g, a in zip(golden, parts, strict=False)]
    return Judgement(score=min(scores), rationale=f"part scores {scores}")
