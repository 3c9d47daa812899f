"""What a document is called: its identifier (the thing it is about, not the page) and its aliases.

A site puts the same affixes on every page title ("json — JSON encoder and decoder — Python 3.11.2
documentation", "Tower - Wikipedia"); no other page mentions such a string, so a question naming it
cannot be reached from anywhere. The affixes are the title segments that start or end the titles of
two or more documents of the corpus, plus the `og:site_name` a page declares. The identifier is the
page's main heading (H1) when it has a short one, else its title without affixes; the aliases are the
other names the text uses for the same subject (the heading's parts, the stripped title, "json module").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Separators between the segments of a page title; a colon only separates a site prefix ("Docs: Foo").
SEGMENT_SEPARATOR = re.compile(r"(\s+[—–|·»›]\s+|\s+-{1,2}\s+|(?<=\w):\s+)")
# A main heading longer than this is a sentence or a banner, not a name.
MAX_HEADING_WORDS = 12
MIN_AFFIX_TITLES = 2
# Nouns that follow a name in running text ("the json module"): such phrases are aliases too.
KIND_NOUNS = ("module", "package", "library", "class", "function", "command", "tool", "program", "format",
              "protocol", "standard", "method", "api", "extension", "language")
# Marks that documentation generators put after headings (Sphinx's ¶, Markdown's closing #).
HEADING_MARKS = re.compile(r"[\s¶#§]+$")


def clean_name(text: str | None) -> str | None:
    """A name on one line without heading marks or code quotes; None when nothing is left."""
    cleaned = " ".join(HEADING_MARKS.sub("", (text or "").replace("`", "")).split())
    return cleaned or None


def title_segments(title: str) -> list[str]:
    """The segments of a title between its separators."""
    return [part.strip() for part in SEGMENT_SEPARATOR.split(title)[::2] if part.strip()]


def site_affixes(titles: Iterable[str | None], site_names: Iterable[str | None] = ()) -> set[str]:
    """Segments that start or end at least two titles, and the declared site names."""
    ends: Counter[str] = Counter()
    for title in titles:
        segments = title_segments(title or "")
        if len(segments) > 1:
            ends.update({segments[0], segments[-1]})
    found = {segment for segment, count in ends.items() if count >= MIN_AFFIX_TITLES}
    return found | {name for name in map(clean_name, site_names) if name}


def strip_affixes(title: str, affixes: set[str]) -> str:
    """The title without the affixes at its start and end (separators included); the title itself
    when nothing else would be left."""
    pieces = SEGMENT_SEPARATOR.split(title)  # segment, separator, segment, ...
    folded = {affix.casefold() for affix in affixes}
    while len(pieces) > 1 and pieces[-1].strip().casefold() in folded:
        pieces = pieces[:-2]
    while len(pieces) > 1 and pieces[0].strip().casefold() in folded:
        pieces = pieces[2:]
    stripped = "".join(pieces).strip()
    return stripped if stripped and stripped.casefold() not in folded else title


def document_names(page_title: str | None, heading: str | None, fallback: str, text: str,
                   affixes: set[str]) -> tuple[str, list[str]]:
    """(identifier, aliases) of a document: the heading when it is a short name, else the title
    without affixes, else the fallback (a file name); aliases are the other names found."""
    title = strip_affixes(page_title, affixes) if page_title else None
    main = strip_affixes(heading, affixes) if heading and len(heading.split()) <= MAX_HEADING_WORDS else None
    identifier = main or title or fallback
    candidates = [title, *title_segments(identifier)]
    if title:
        candidates += title_segments(title)
    plain = text.replace("`", "")
    for segment in title_segments(identifier):
        candidates += _kind_phrases(segment, plain)
    aliases: dict[str, str] = {}
    for name in candidates:
        if name and name.casefold() != identifier.casefold() and name.casefold() not in {a.casefold() for a in affixes}:
            aliases.setdefault(name.casefold(), name)
    return identifier, list(aliases.values())


def _kind_phrases(name: str, text: str) -> list[str]:
    """'json module' when the text calls the subject so (only for short names: a phrase after a long
    title is a sentence, not a name)."""
    if len(name.split()) > 2:
        return []
    pattern = rf"(?<![\w.]){re.escape(name)}\s+({'|'.join(KIND_NOUNS)})\b"
    return list(dict.fromkeys(f"{name} {match}" for match in re.findall(pattern, text)))
