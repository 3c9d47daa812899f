"""The text a task is compared by for duplicates: its question and answer with the differences
that never change what is asked taken out.

Two levels:
- `surface_form`: Unicode NFKC (full-width letters, ligatures, no-break spaces), case folded,
  accents, punctuation and thousands separators dropped, one space between words. Two texts with
  the same surface form are copies.
- `comparison_text`: the surface form without frame words, the function words and lead-ins a
  template repeats around the specifics ("according to", "based on", "what is the", "which").
  Embeddings and the exact pass work on this text, so a copy in upper case or a question with
  another lead-in lands on (nearly) the same vector, and what is left is what the question is about.
Numbers, names, negations and order words ("first", "before", "not") are never frame words: they
are the specifics that tell two questions from one template apart.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

from taskcraft_core.schema import Task

_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u2009'](?=\d{3}\b)")
_DECIMAL = re.compile(r"(?<=\d)[.,](?=\d)")
_WORD = re.compile(r"\w+")

# Function words (articles, auxiliaries, modals, pronouns, question words, the prepositions that
# frame a question) and the lead-in words that point at a source without naming it.
FRAME_WORDS = frozenset("""
a an the
is are was were be been being am do does did done has have had having
can could would should will shall may might must
i me my we us our you your it its they them their he him his she her this that these those there
what which who whom whose when where how why whether
of in on at to by for from with as per into onto about via within
and or also
according based accordance stated states given gives reported reports recorded records described
describes mentioned noted published shown listed documented cited
""".split())


@lru_cache(maxsize=1 << 17)  # each text is normalised once, however many pairs it is in
def surface_form(text: str) -> str:
    """NFKC, case folded, without accents, punctuation or thousands separators; single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    folded = _DECIMAL.sub("_", _THOUSANDS.sub("", folded))  # 3.5 stays one token; 12,000 becomes 12000
    return " ".join(word.replace("_", ".") for word in _WORD.findall(folded))


@lru_cache(maxsize=1 << 17)
def comparison_text(text: str) -> str:
    """The surface form without frame words: what a question is about."""
    words = surface_form(text).split()
    kept = [word for word in words if word not in FRAME_WORDS]
    return " ".join(kept or words)


def answer_text(task: Task) -> str:
    """The golden answer as one string (the parts of a width answer joined in order)."""
    return task.golden_answer if isinstance(task.golden_answer, str) else " ; ".join(task.golden_answer)


def dedup_text(task: Task) -> str:
    """What duplicate detection embeds and hashes: the normalised question and answer."""
    return f"{comparison_text(task.question)} | {comparison_text(answer_text(task))}"


def dedup_hash(task: Task) -> str:
    """A hash of `dedup_text`: equal hashes are duplicates for certain (the exact pass)."""
    return hashlib.sha1(dedup_text(task).encode("utf-8")).hexdigest()
