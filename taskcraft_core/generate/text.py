"""Plain-text helpers shared by both engines: answer normalisation, answer matching, sentences and
fact spans (dates, numbers with units, years, proper names) found in real text with their offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTHS = {
    name: number
    for number, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
         ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
         ("october", "oct"), ("november", "nov"), ("december", "dec")],
        start=1,
    )
    for name in names
}
MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|" \
        r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
DAY = r"(?:[12][0-9]|3[01]|0?[1-9])(?:st|nd|rd|th)?"
YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
DATE = rf"(?:{DAY}\s+{MONTH},?\s+{YEAR}|{MONTH}\s+{DAY},?\s+{YEAR}|{YEAR}-[01][0-9]-[0-3][0-9])"
NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
SCALE = r"(?:thousand|million|billion|trillion)"
MONEY = rf"(?:[$€£]\s?{NUMBER}(?:\s+{SCALE})?|{NUMBER}(?:\s+{SCALE})?\s+(?:dollars|euros|pounds|francs))"
PERCENT = rf"{NUMBER}\s?(?:%|percent\b|per cent\b)"
UNITS = (
    "nautical miles|square kilometres|square kilometers|square metres|square meters|square miles|"
    "m|km|cm|mm|kg|g|t|ha|mi|ft|km2|m2|metres|meters|kilometres|kilometers|miles|feet|tonnes|tons|"
    "kilograms|grams|litres|liters|hectares|degrees|years|months|weeks|days|hours|minutes|seconds|"
    "storeys|stories|floors|steps|rivets|pieces|volumes|pages|species|languages|members|employees|"
    "inhabitants|residents|visitors|people|workers|students|seats|rooms|islands|countries"
)
QUANTITY = rf"{NUMBER}(?:\s+{SCALE})?\s+(?P<unit>{UNITS})\b"
CONNECTOR = r"(?:of|de|la|le|du|des|von|van|der|da|del|di|and|the|on|upon)"
NAME_WORD = r"[A-Z][\w'’\-]*[\w]"
NAME = rf"{NAME_WORD}(?:\s+(?:{CONNECTOR}\s+)?{NAME_WORD})*"
ARTICLES = {"a", "an", "the"}
# Capitalised words that open sentences or name calendar items, never answers on their own.
NOT_NAMES = {
    "the", "a", "an", "in", "on", "at", "it", "its", "this", "that", "these", "those", "there", "he", "she",
    "they", "we", "his", "her", "their", "after", "before", "during", "since", "by", "from", "with", "for",
    "when", "while", "although", "however", "today", "as", "of", "to", "and", "but", "or", "if", "each",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", *MONTHS,
}
ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "mt", "prof", "no", "vs", "e.g", "i.e", "etc", "approx", "c", "ca"}


def iso_date(text: str) -> str | None:
    """YYYY-MM-DD for a date written as '14 July 1789', 'July 14, 1789' or '1789-07-14'."""
    text = text.strip()
    if re.fullmatch(rf"{YEAR}-[01][0-9]-[0-3][0-9]", text):
        return text
    words = re.findall(r"[A-Za-z]+|\d+", text)
    month = next((MONTHS[w.lower()] for w in words if w.lower() in MONTHS), None)
    numbers = [w for w in words if w.isdigit()]
    years = [n for n in numbers if len(n) == 4]
    days = [n for n in numbers if len(n) <= 2]
    if month is None or not years or not days:
        return None
    return f"{years[0]}-{month:02d}-{int(days[0]):02d}"


def normalise_answer(text: str) -> str:
    """A comparable form: dates as YYYY-MM-DD, no thousands separators, lower case, no punctuation
    or articles, single spaces."""
    text = re.sub(DATE, lambda m: iso_date(m.group(0)) or m.group(0), text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text).lower()
    text = re.sub(r"\s*(?:per cent|percent|%)", "%", text)
    text = re.sub(r"[^\w%.\-]+", " ", text)
    text = re.sub(r"(?<!\d)[.\-]|[.\-](?!\d)", " ", text)
    return " ".join(word for word in text.split() if word not in ARTICLES)


def contains_answer(golden: str, text: str) -> bool:
    """Whether the golden answer occurs (normalised, as whole words) in a text."""
    needle = normalise_answer(golden)
    if not needle:
        return False
    return re.search(rf"(?<![\w]){re.escape(needle)}(?![\w])", normalise_answer(text)) is not None


def match_score(golden: str, answer: str) -> int:
    """2 when the normalised answers are equal, 1 when the golden answer is inside a longer answer."""
    if normalise_answer(golden) and normalise_answer(golden) == normalise_answer(answer):
        return 2
    return 1 if contains_answer(golden, answer) else 0


def canonical_form(surface: str) -> str:
    """The shortest canonical answer: ISO dates, numbers without thousands separators, units kept."""
    surface = " ".join(surface.split())
    date = iso_date(surface) if re.fullmatch(DATE, surface) else None
    if date:
        return date
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", re.sub(r"^(?:the|The)\s+", "", surface))


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text with its offsets in that text."""

    start: int
    end: int
    text: str


def sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Sentences of prose with their offsets: blocks of lines are split at blank lines, headings and
    list items, then at sentence ends. Headings, table rows, link markup and questions are skipped."""
    found: list[Sentence] = []
    for start, end in _prose_blocks(text):
        found.extend(s for s in _split_block(text, start, end, offset) if not re.search(r"\]\(|\[|\||`|\*", s.text))
    return found


def _is_heading(line: str) -> bool:
    """Markdown headings and rules, and short lines without closing punctuation (HTML and PDF
    headings arrive as such lines)."""
    stripped = line.strip()
    if re.match(r"#|=+$|-+$|\|", stripped):
        return True
    words = stripped.split()
    # A wrapped sentence often breaks after "of" or "the"; a heading never ends there.
    return not re.search(r"[.!?:;,)\"”]$", stripped) and len(words) <= 8 and words[-1].lower() not in NOT_NAMES


def _prose_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of prose lines; a list marker starts a new run, its marker left out."""
    blocks: list[tuple[int, int]] = []
    line_end = -1
    for body in text.split("\n"):
        line_start, line_end = line_end + 1, line_end + 1 + len(body)
        if not body.strip() or _is_heading(body):
            blocks.append((-1, -1))  # a break: the next prose line starts a new block
            continue
        marker = re.match(r"\s*(?:[-*+>]|\d+[.)])\s+", body)
        if blocks and blocks[-1][0] >= 0 and not marker:
            blocks[-1] = (blocks[-1][0], line_end)
        else:
            blocks.append((line_start + (marker.end() if marker else len(body) - len(body.lstrip())), line_end))
    return [block for block in blocks if block[0] >= 0]


def _split_block(text: str, start: int, end: int, offset: int) -> list[Sentence]:
    pieces: list[Sentence] = []
    begin = start
    for stop in re.finditer(r"[.!?][\"”’)]?(?=\s+[\"“(]?[A-Z0-9]|\s*$)", text[start:end]):
        cut = start + stop.end()
        last_word = re.search(r"([\w.]+)\.$", text[begin:cut - 0].rstrip("\"”’)"))
        if last_word and (last_word.group(1).lower() in ABBREVIATIONS or re.fullmatch(r"[A-Z]", last_word.group(1))):
            continue
        pieces.append(Sentence(offset + begin, offset + cut, text[begin:cut]))
        begin = cut + len(text[cut:end]) - len(text[cut:end].lstrip())
    return [p for p in pieces if p.text.endswith((".", "!", ".”", ".\"", ".)")) and 5 <= len(p.text.split()) <= 60]


@dataclass(frozen=True)
class Span:
    """A fact in a sentence: its kind, its text and its offsets relative to the sentence."""

    kind: str  # date | money | percent | year | quantity | name
    text: str
    start: int
    end: int
    unit: str = ""  # for quantities: the unit or counted noun ("metres", "visitors")


# Highest priority first: when matches overlap, the earlier kind wins. A group named "span" marks
# the fact inside a match that needs context (a year after a preposition).
SPAN_PATTERNS: list[tuple[str, str]] = [
    ("date", DATE),
    ("money", MONEY),
    ("percent", PERCENT),
    ("year", rf"\b(?:in|since|by|until|from|before|after|during|of|to|around|circa) (?P<span>{YEAR})\b(?![,.]?\d)"),
    ("quantity", QUANTITY),
    ("year", rf"(?<![\d,.$€£]){YEAR}\b(?![,.]?\d|\s*%)"),
    ("name", NAME),
]


def fact_spans(sentence: str, identifier: str) -> list[Span]:
    """Non-overlapping fact spans of a sentence in order; names equal to or inside the identifier
    (the question names it already) and lone sentence-opening words are left out."""
    chosen: list[Span] = []
    for kind, pattern in SPAN_PATTERNS:
        for match in re.finditer(pattern, sentence):
            group = "span" if "span" in match.groupdict() else 0
            found = Span(kind, match.group(group), match.start(group), match.end(group),
                        unit=match.groupdict().get("unit") or "")
            span = _trim_name(found) if kind == "name" else found
            if span is None or any(span.start < c.end and c.start < span.end for c in chosen):
                continue
            if kind == "name" and not _is_answer_name(span, identifier):
                continue
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def _trim_name(span: Span) -> Span | None:
    """Drop leading sentence words ('The', 'In') from a capitalised run."""
    words = span.text.split()
    start = span.start
    while words and words[0].lower() in NOT_NAMES:
        start += len(words[0]) + 1
        words = words[1:]
    if not words or words[-1].lower() in NOT_NAMES:
        return None
    text = re.sub(r"['’]s$", "", " ".join(words))
    return Span("name", text, start, start + len(text))


def _is_answer_name(span: Span, identifier: str) -> bool:
    name, ident = normalise_answer(span.text), normalise_answer(identifier)
    if not name or name in ident or ident in name:
        return False
    return span.start > 0 or len(span.text.split()) > 1
