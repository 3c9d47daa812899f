"""Model-free checks of an atomic candidate's answer against its source, run before verification:
the canonical answer still says what the evidence says, and the relation points to one value only
in the evidence chunk and its neighbours (a question must admit one answer)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from taskcraft_core.generate.protocol import Conclusion
from taskcraft_core.generate.text import contains_answer, fact_spans, normalise_answer, sentences
from taskcraft_core.schema import Chunk

SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
# Words of a relation that say what kind of value is asked, not which fact: they match any sentence.
GENERIC_WORDS = {
    "the", "a", "an", "of", "in", "on", "at", "by", "for", "to", "from", "with", "and", "or", "as", "its", "it",
    "is", "was", "were", "are", "be", "been", "that", "which", "what", "when", "who", "whom", "whose", "how",
    "many", "much", "date", "year", "day", "number", "name", "value", "amount", "total", "count",
}
# Fact kinds that answer the same sort of question: a year and a full date both say "when".
KIND_FAMILY = {"date": "time", "year": "time", "money": "amount", "percent": "share", "quantity": "quantity",
               "name": "name", "code": "code"}
MIN_RELATION_WORDS = 2  # a relation with fewer distinctive words cannot be told apart from others


def regrounding_problem(canonical: str, conclusion: Conclusion) -> str | None:
    """None when the canonical answer still matches the evidence span after normalisation (dates,
    numbers, case, punctuation); a quantity may spell its unit differently if its numbers are the
    evidence's. Otherwise why the candidate fails."""
    source = f"{conclusion.answer} . {conclusion.evidence}"
    if contains_answer(canonical, source):
        return None
    wanted = numbers_in(canonical)
    if wanted and wanted <= numbers_in(source):
        return None
    return (f"the canonical answer “{canonical}” no longer matches the evidence “{conclusion.answer}” "
            f"(not re-grounded in: {conclusion.evidence[:160]})")


def numbers_in(text: str) -> set[str]:
    """The numbers a text states, normalised (no thousands separators, dates as their parts), with
    '2 million' also read as 2000000."""
    normal = normalise_answer(text)
    found = set(re.findall(r"\d+(?:\.\d+)?", normal))
    for number, scale in re.findall(r"(\d+(?:\.\d+)?)\s+(thousand|million|billion|trillion)\b", normal):
        value = float(number) * SCALES[scale]
        found.add(str(int(value)) if value.is_integer() else str(value))
    return {n.lstrip("0") or "0" for n in found}


def neighbourhood(chunk: Chunk, chunks: Sequence[Chunk]) -> list[Chunk]:
    """The evidence chunk and its neighbours before and after, in order."""
    return [c for c in chunks if abs(c.position - chunk.position) <= 1]


def uniqueness_problem(conclusion: Conclusion, identifier: str, chunks: Sequence[Chunk]) -> str | None:
    """Why the question would admit another answer: a sentence of these chunks other than the evidence
    carries every distinctive word of the relation and another value of the answer's kind. None
    when no such sentence exists (or the relation is too generic to tell)."""
    kind = answer_kind(conclusion.answer, conclusion.evidence, identifier)
    keys = relation_words(conclusion.relation, identifier)
    if kind is None or len(keys) < MIN_RELATION_WORDS:
        return None
    answer, evidence = normalise_answer(conclusion.answer), normalise_answer(conclusion.evidence)
    for chunk in chunks:
        for sentence in sentences(chunk.text):
            text = normalise_answer(sentence.text)
            if text in evidence or evidence in text or not keys <= _stems(sentence.text):
                continue
            others = [span.text for span in fact_spans(sentence.text, identifier)
                      if KIND_FAMILY[span.kind] == kind and normalise_answer(span.text) != answer
                      and not contains_answer(span.text, conclusion.answer)]
            if others:
                return (f"not unique: the relation “{conclusion.relation}” also holds for “{others[0]}” "
                        f"in the same document: {sentence.text[:160]}")
    return None


def answer_kind(answer: str, evidence: str, identifier: str) -> str | None:
    """The family of fact the answer is (time, amount, share, quantity, name), read from its span in
    the evidence sentence, else from the answer alone."""
    wanted = normalise_answer(answer)
    for text in (evidence, answer):
        for span in fact_spans(text, identifier):
            if normalise_answer(span.text) == wanted or contains_answer(span.text, answer):
                return KIND_FAMILY[span.kind]
    return None


def relation_words(relation: str, identifier: str) -> set[str]:
    """The relation's distinctive words (stemmed): without generic words and the identifier's words."""
    return _stems(relation) - _stems(identifier) - GENERIC_WORDS


def _stems(text: str) -> set[str]:
    return {re.sub(r"(?<=\w{3})s$", "", word) for word in re.findall(r"[a-z]+", text.lower())}
