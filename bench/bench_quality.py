"""Task quality on a real corpus nobody here wrote: the offline engine, `--kinds atomic,depth,width --limit 40`.

By default the corpus is ten cross-linked pages of the Python 3.11 documentation that Debian's
`python3.11-doc` package installs (a Sphinx site: navigation bars, sidebars, a site suffix on every
title) plus the PDF manual of `libtasn1-doc` (a TeX manual with a table of contents). Give other
files or folders to measure another corpus.

    python -m bench.bench_quality [PATH ...] [--limit 40] [--examples 5]

Prints: documents covered by verified atomic tasks, verified tasks per kind, depth tasks by hops,
the share of atomic answers of each type, the share of questions that are one well-formed question,
task identifiers that carry a site affix (a title segment shared by several page titles of the
corpus, measured from the raw <title>s here, not by the code under test), width tasks whose answers
repeat, and example tasks of each kind.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bs4 import BeautifulSoup

from taskcraft_core.generate.text import normalise_answer
from taskcraft_core.ingest.pipeline import ingest_locations
from taskcraft_core.runs.service import RunRequest, create_run, execute_run
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/library")
PYTHON_PAGES = ("json", "pickle", "marshal", "shelve", "copyreg", "csv", "configparser", "tomllib", "dbm", "plistlib")
PDF_MANUAL = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")
INSTALL_HINT = "install it with: apt-get install -y python3.11-doc libtasn1-doc"
TITLE_SEPARATORS = re.compile(r"\s+[—–|·»:-]\s+")
WH_WORDS = re.compile(r"\b(?:what|which|who|whom|whose|when|where|how)\b", re.IGNORECASE)
CODE = re.compile(r"^`?[A-Za-z_][\w.]*(?:\(\))?`?$")
SENTENCE_BREAK = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?:;]\s+[\w`“\"(]")
VERSION_NOTE = re.compile(r"\b(?:Changed|New) in version\b|\bDeprecated since\b")
UNIT_NUMBER = re.compile(r"^\d[\d.,]*\s+[A-Za-z%]+")


def default_corpus() -> list[Path]:
    return [PYTHON_DOCS / f"{page}.html" for page in PYTHON_PAGES] + [PDF_MANUAL]


def answer_type(answer: str) -> str:
    """What kind of answer a reviewer sees: the types the issue calls useful, else 'other'."""
    text = answer.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}|1\d{3}|20\d{2}", text):
        return "date or year"
    if UNIT_NUMBER.match(text) or re.fullmatch(r"[$€£]\s?\d[\d.,]*.*|\d[\d.,]*\s?%", text):
        return "number with unit"
    if re.fullmatch(r"\d[\d.,]*", text):
        return "bare number"
    if CODE.match(text) and (re.search(r"[._()]|[a-z][A-Z]", text) or text.startswith("`") or text.islower()
                             or re.fullmatch(r"[A-Z]\w*(?:Error|Exception|Warning)", text)):
        return "code identifier"
    words = text.split()
    if len(words) >= 2 and all(w[:1].isupper() or w.lower() in {"of", "the", "and", "de", "von"} for w in words):
        return "proper name (several words)"
    if len(words) == 1 and text[:1].isupper():
        return "single capitalised word"
    return "other"


def well_formed(question: str) -> bool:
    """One question: a single line starting with a capital, one '?' at its very end, a wh-word, no
    second sentence inside (no '. ' before a word), no version note, no ellipsis, balanced brackets
    and quotes, no wh-word standing in front of a closing bracket (a blank in a parenthesis), at most
    60 words."""
    text = question.strip()
    if "\n" in text or not text[:1].isupper() or text.count("?") != 1 or not text.endswith("?"):
        return False
    if "…" in text or "..." in text or not WH_WORDS.search(text) or len(text.split()) > 60:
        return False
    if SENTENCE_BREAK.search(text) or VERSION_NOTE.search(text) or re.search(r"\b(?:what|who) ?[)\]]", text):
        return False
    pairs = (("(", ")"), ("[", "]"), ("“", "”"))
    return all(text.count(a) == text.count(b) for a, b in pairs) and text.count("`") % 2 == 0


def site_affixes(paths: list[Path]) -> set[str]:
    """Title segments that start or end the raw <title> of two or more HTML pages of the corpus."""
    ends: Counter[str] = Counter()
    for path in paths:
        if path.suffix.lower() not in (".html", ".htm"):
            continue
        soup = BeautifulSoup(path.read_bytes(), "html.parser")
        title = " ".join(soup.title.get_text().split()) if soup.title else ""
        parts = TITLE_SEPARATORS.split(title)
        if len(parts) > 1:
            ends.update({parts[0], parts[-1]})
    return {segment for segment, count in ends.items() if count >= 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="Files or folders (default: python3.11-doc pages + "
                        "the libtasn1 PDF manual).")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--examples", type=int, default=5)
    args = parser.parse_args()
    paths = args.paths or default_corpus()
    missing = [path for path in paths if not path.exists()]
    if missing:
        print(f"corpus missing: {', '.join(map(str, missing))}\n{INSTALL_HINT}", file=sys.stderr)
        return 1
    files = sorted(p for path in paths for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as home:
        workspace = Workspace.open(Settings(home=Path(home), engine="offline"))
        started = time.perf_counter()
        report = ingest_locations([str(path) for path in paths], workspace)
        ingested = time.perf_counter() - started
        run = create_run(workspace, RunRequest(kinds=["atomic", "depth", "width"], limit=args.limit, engine="offline"))
        started = time.perf_counter()
        execute_run(workspace, run.id)
        generated = time.perf_counter() - started
        tasks = workspace.store.list_tasks(TaskFilter(run_ids=[run.id]), limit=None, with_trajectory=False)
        documents = workspace.store.list_documents()
        print(f"corpus: {len(files)} files, {report.documents_added} documents ingested in {ingested:.1f} s "
              f"({len(report.errors)} errors); generation {generated:.1f} s")
        print_numbers(tasks, [d.id for d in documents], site_affixes(files))
        print_examples(tasks, args.examples)
    return 0


def print_numbers(tasks: list[Task], document_ids: list[str], affixes: set[str]) -> None:
    verified = [t for t in tasks if t.status == "pending"]
    by_kind = Counter(t.kind for t in verified)
    candidates = Counter(t.kind for t in tasks)
    atomic = [t for t in verified if t.kind == "atomic"]
    covered = {t.document_id for t in atomic}
    print(f"documents covered by verified atomic tasks: {len(covered)}/{len(document_ids)} "
          f"({share(len(covered), len(document_ids))})")
    per_document = Counter(t.document_id for t in atomic)
    print(f"verified atomic tasks per covered document: {sorted(per_document.values(), reverse=True)}")
    for kind in ("atomic", "depth", "width"):
        print(f"{kind:<7} verified {by_kind[kind]:>3} of {candidates[kind]:>3} candidates")
    hops = Counter(t.hops for t in verified if t.kind == "depth")
    print(f"depth tasks: {by_kind['depth']} (by hops: {dict(sorted(hops.items())) or '{}'})")
    types = Counter(answer_type(str(t.golden_answer)) for t in atomic)
    print("atomic answer types: " + (", ".join(f"{kind} {share(n, len(atomic))}" for kind, n in types.most_common())
                                     or "none"))
    good = sum(well_formed(t.question) for t in verified if t.kind != "width")
    single = [t for t in verified if t.kind != "width"]
    print(f"one well-formed question (atomic + depth): {good}/{len(single)} ({share(good, len(single))})")
    with_affix = [t for t in verified if any(affix in t.content_identifier for affix in affixes)]
    print(f"site affixes in the corpus titles: {sorted(affixes) or 'none'}")
    print(f"verified tasks whose identifier carries a site affix: {len(with_affix)}/{len(verified)} "
          f"({share(len(with_affix), len(verified))})")
    widths = [t for t in verified if t.kind == "width"]
    repeated = [t for t in widths if len({normalise_answer(a) for a in t.golden_answer}) < len(t.golden_answer)]
    print(f"width tasks with repeated answers: {len(repeated)}/{len(widths)}")


def print_examples(tasks: list[Task], count: int) -> None:
    for kind in ("atomic", "depth", "width"):
        chosen = [t for t in tasks if t.kind == kind and t.status == "pending"][:count]
        print(f"\n-- {kind} examples ({len(chosen)}) --")
        for task in chosen:
            print(f"Q: {task.question}\n   A: {task.golden_answer}   [identifier: {task.content_identifier}]")


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
