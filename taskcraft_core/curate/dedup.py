"""Near-duplicate tasks: found exactly, clustered, labelled, shown side by side, kept out of new runs.

How duplicates are found:
1. Every task's normalised text (question and answer without case, accents, punctuation, Unicode
   variants and the frame words a template repeats: `index.normalise.dedup_text`) has a vector in
   the Chroma task collection, stored with a hash of the text it came from. Missing or stale vectors
   (a task edited since) are embedded and stored first, so the collection heals itself and is never
   trusted blindly.
2. Candidate pairs are all pairs whose normalised texts are equal (the exact pass, by hash: certain
   and free) and all pairs with cosine similarity >= the threshold, found by exact blockwise
   matrix products over the unit vectors (recall 1.0 by construction, and faster at 36k tasks than
   one HNSW query per task).
3. A candidate is dropped when the two tasks state different specifics: answers that disagree, or
   questions naming different numbers or names. The same fact asked twice has the same answer;
   "the same template with another city or year" does not. Embeddings alone cannot tell these apart.
4. Structural duplicates are added whatever their wording: tasks of any kind that ask for the same
   answer from the same evidence span through the same tool sequence (`structural_pairs`).
5. Pairs a person marked "not duplicates" are dropped; the rest are clustered with union-find and
   labelled lexically (rapidfuzz): exact, near_exact (light edits) or paraphrase; a pair found only
   by its structure is labelled structural (and every structural pair says so in `structural`).
The lexical cut-offs of steps 3 and 4 are settings (`LexicalRules.from_settings`).

A cluster remembers the newest review of each member as it was when found; keeping one rejects
the others only if none of them was decided since (all or nothing).

Chroma's nearest-neighbour queries serve the single-task questions: `find_similar` (Review page)
and `gate_candidate` (the generation gate).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel
from rapidfuzz import fuzz

from taskcraft_core.access import acting_reviewer
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.index.normalise import answer_text, dedup_hash, dedup_text, surface_form
from taskcraft_core.index.task_vectors import sync_task_index, task_batches, task_vectors
from taskcraft_core.index.vectors import task_text
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

DuplicateKind = Literal["exact", "near_exact", "paraphrase", "structural"]

DEFAULT_SCOPE = ("pending", "accepted")  # the tasks a person still curates or has kept
GATE_STATUSES = ("pending", "accepted")
BLOCK_ROWS = 1024  # rows per matrix block: 1024 x 36k float32 is about 150 MB
TEXT_BATCH = 1000
GATE_NEIGHBOURS = 8

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[\w%]+(?:[.'’-][\w%]+)*")
_ARTICLES = frozenset({"the", "a", "an"})
# Capitalised words that name nothing: question words and common sentence openers.
_NOT_NAMES = frozenset({
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "in", "on", "at", "of", "for",
    "according", "as", "by", "the", "a", "an", "to", "from", "during", "after", "before", "following",
    "answer", "is", "was", "were", "are", "did", "does", "do", "and", "or", "with", "under", "over",
})


class DuplicatePair(BaseModel):
    """Two tasks that say the same thing, how similar they are, and in what way."""

    a: str
    b: str
    cosine: float
    lexical: float
    token_set: float = 0.0
    kind: DuplicateKind
    structural: bool = False  # same answer from the same evidence span through the same tool sequence


class DuplicateCluster(BaseModel):
    """Tasks connected by duplicate pairs; a person keeps one of them."""

    task_ids: list[str]
    pairs: list[DuplicatePair]
    max_similarity: float
    latest_review_ids: dict[str, int | None] = {}  # each member's newest review when the cluster was found


@dataclass(frozen=True)
class LexicalRules:
    """The lexical cut-offs (see `Settings`): light edit versus paraphrase, same answer, same name."""

    near_exact_ratio: float
    answer_match_ratio: float
    name_match_ratio: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LexicalRules:
        return cls(settings.near_exact_ratio, settings.answer_match_ratio, settings.name_match_ratio)


DEFAULT_RULES = LexicalRules.from_settings(Settings())


# ---- finding pairs ------------------------------------------------------------------------------


def cosine_pairs(vectors: np.ndarray, threshold: float, block_rows: int = BLOCK_ROWS) -> list[tuple[int, int, float]]:
    """Every pair (i < j) of unit vectors with cosine >= threshold: exact, in row blocks."""
    pairs: list[tuple[int, int, float]] = []
    n = len(vectors)
    for start in range(0, n, block_rows):
        block = vectors[start : start + block_rows] @ vectors[start:].T
        # Only the upper triangle: column c (offset by start) must lie right of row r.
        block[np.tril_indices(block.shape[0], k=0, m=block.shape[1])] = -2.0
        rows, cols = np.nonzero(block >= threshold)
        pairs.extend(
            (start + int(r), start + int(c), float(block[r, c])) for r, c in zip(rows, cols, strict=False)
        )
    return pairs


def same_answer_pairs(vectors: np.ndarray, codes: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i < j) with equal answer codes and cosine >= threshold: `cosine_pairs` within each
    group of equal answers, so the cost is the sum of the groups' squares, not the square of all."""
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    pairs: list[tuple[int, int, float]] = []
    for rows in np.split(order, bounds):
        if len(rows) > 1:
            pairs.extend((int(rows[i]), int(rows[j]), cosine) if rows[i] < rows[j] else
                         (int(rows[j]), int(rows[i]), cosine)
                         for i, j, cosine in cosine_pairs(vectors[rows], threshold))
    return pairs


def answer_codes(tasks: Sequence[Task]) -> np.ndarray:
    """One integer per task, equal for tasks whose answers have the same normalised text."""
    codes: dict[str, int] = {}
    return np.array([codes.setdefault(_fold(answer_text(task)), len(codes)) for task in tasks], dtype=np.int64)


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


@lru_cache(maxsize=1 << 17)  # each task's text is folded once, however many pairs it is in
def _fold(text: str) -> str:
    """The surface form (NFKC, case folded, no accents, punctuation or thousands separators)
    without articles: what light edits change."""
    return " ".join(word for word in surface_form(text).split() if word not in _ARTICLES)


def _numbers(text: str) -> set[str]:
    return {number.replace(",", "") for number in _NUMBER.findall(text)}


@lru_cache(maxsize=1 << 17)
def _names(question: str) -> frozenset[str]:
    """Capitalised words past the first word, folded: the entities a question is about."""
    names = set()
    for word in _WORD.findall(_strip_accents(question))[1:]:
        folded = _fold(re.sub(r"['’]s$", "", word))
        if word[:1].isupper() and folded and folded not in _NOT_NAMES:
            names.add(folded)
    return frozenset(names)


def _unmatched_names(names: frozenset[str], others: frozenset[str], min_ratio: float) -> set[str]:
    """Names with no close spelling among the others ("Estonia" matches "Estonian")."""
    return {name for name in names if not any(fuzz.ratio(name, other) >= min_ratio for other in others)}


def answers_agree(a: str, b: str, rules: LexicalRules = DEFAULT_RULES) -> bool:
    """Two answers state the same thing: same numbers, and one's words (nearly) contain the other's."""
    fa, fb = _fold(a), _fold(b)
    if _numbers(fa) and _numbers(fb) and _numbers(fa) != _numbers(fb):
        return False
    return fuzz.token_set_ratio(fa, fb) >= rules.answer_match_ratio


def different_specifics(a: Task, b: Task, rules: LexicalRules = DEFAULT_RULES) -> bool:
    """True when two similar-looking tasks ask about different things (another answer, number or name)."""
    if not answers_agree(answer_text(a), answer_text(b), rules):
        return True
    numbers_a, numbers_b = _numbers(_fold(a.question)), _numbers(_fold(b.question))
    if numbers_a and numbers_b and numbers_a != numbers_b:
        return True
    names_a, names_b = _names(a.question), _names(b.question)
    return bool(_unmatched_names(names_a, names_b, rules.name_match_ratio)) and bool(
        _unmatched_names(names_b, names_a, rules.name_match_ratio))


def same_specifics(a: Task, b: Task, rules: LexicalRules = DEFAULT_RULES) -> bool:
    """True when two tasks ask for the same answer about the same things: answers agree, and their
    questions name the same numbers and (nearly) the same names, at least one of them. Stricter than
    `not different_specifics`: it admits pairs whose wording differs more (see `same_answer_threshold`)."""
    if not answers_agree(answer_text(a), answer_text(b), rules):
        return False
    numbers_a, numbers_b = _numbers(_fold(a.question)), _numbers(_fold(b.question))
    names_a, names_b = _names(a.question), _names(b.question)
    if numbers_a != numbers_b or not (numbers_a or names_a):
        return False
    return not _unmatched_names(names_a, names_b, rules.name_match_ratio) and not _unmatched_names(
        names_b, names_a, rules.name_match_ratio)


def label_pair(a: Task, b: Task, cosine: float, rules: LexicalRules = DEFAULT_RULES,
               kind: DuplicateKind | None = None) -> DuplicatePair:
    """Score a pair lexically and say whether it is a copy, a light edit or a paraphrase (unless
    `kind` is given: a pair found by its structure keeps that label when its wording differs)."""
    text_a, text_b = _fold(task_text(a)), _fold(task_text(b))
    lexical = fuzz.ratio(text_a, text_b) / 100.0
    token_set = fuzz.token_set_ratio(text_a, text_b) / 100.0
    same = surface_form(task_text(a)) == surface_form(task_text(b))
    if same or lexical >= rules.near_exact_ratio or kind is None:
        kind = "exact" if same else "near_exact" if lexical >= rules.near_exact_ratio else "paraphrase"
    return DuplicatePair(a=a.id, b=b.id, cosine=round(cosine, 4), lexical=round(lexical, 4),
                         token_set=round(token_set, 4), kind=kind)


def cluster_pairs(pairs: Sequence[DuplicatePair], order: Sequence[str] = ()) -> list[DuplicateCluster]:
    """Connected components of the pairs (union-find), biggest and most similar first; task ids in
    each cluster follow `order` (e.g. oldest first) when given."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        ra, rb = root(pair.a), root(pair.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for node in parent:
        members.setdefault(root(node), []).append(node)
    edges: dict[str, list[DuplicatePair]] = {}
    for pair in pairs:
        edges.setdefault(root(pair.a), []).append(pair)
    rank = {task_id: i for i, task_id in enumerate(order)}
    clusters = [
        DuplicateCluster(
            task_ids=sorted(ids, key=lambda i: (rank.get(i, len(rank)), i)),
            pairs=edges[key],
            max_similarity=max(p.cosine for p in edges[key]),
        )
        for key, ids in members.items()
    ]
    return sorted(clusters, key=lambda c: (-len(c.task_ids), -c.max_similarity, c.task_ids[0]))


def _threshold(workspace: Workspace, threshold: float | None) -> float:
    value = workspace.settings.duplicate_threshold if threshold is None else threshold
    if not 0.0 < value <= 1.0:
        raise TaskCraftError(f"Similarity threshold {value} is out of range.", "Use a number in (0, 1], e.g. 0.92.")
    return value


def find_near_duplicates(
    workspace: Workspace, threshold: float | None = None, task_filter: TaskFilter | None = None,
) -> list[DuplicateCluster]:
    """All clusters of near-duplicate tasks among those matching the filter (default: pending and
    accepted tasks), ignoring pairs a person marked as not duplicates. Each cluster carries its
    members' newest review ids, for `keep_one`."""
    limit = _threshold(workspace, threshold)
    rules = LexicalRules.from_settings(workspace.settings)
    scope = task_filter or TaskFilter(statuses=list(DEFAULT_SCOPE))
    tasks: list[Task] = []
    latest: dict[str, int | None] = {}
    for batch, batch_latest in task_batches(workspace, scope):
        tasks.extend(batch)
        latest.update(batch_latest)
    if len(tasks) < 2:
        return []
    vectors = task_vectors(workspace, tasks)
    dismissed = workspace.store.not_duplicate_pairs()
    same_answer_limit = min(limit, workspace.settings.same_answer_threshold)
    candidates = {(i, j): cosine for i, j, cosine in same_answer_pairs(vectors, answer_codes(tasks), same_answer_limit)}
    candidates.update({(i, j): cosine for i, j, cosine in cosine_pairs(vectors, limit)})
    exact = set(same_text_pairs(tasks))
    candidates.update(dict.fromkeys(exact, 1.0))
    pairs = {
        (i, j): label_pair(tasks[i], tasks[j], cosine, rules)
        for (i, j), cosine in sorted(candidates.items())
        if tuple(sorted((tasks[i].id, tasks[j].id))) not in dismissed
        and ((i, j) in exact or is_duplicate(tasks[i], tasks[j], cosine, limit, rules))
    }
    for i, j in structural_pairs(workspace, tasks):
        if tuple(sorted((tasks[i].id, tasks[j].id))) in dismissed:
            continue
        found = pairs.get((i, j)) or label_pair(tasks[i], tasks[j], float(vectors[i] @ vectors[j]), rules,
                                                 kind="structural")
        pairs[(i, j)] = found.model_copy(update={"structural": True})
    return [cluster.model_copy(update={"latest_review_ids": {i: latest.get(i) for i in cluster.task_ids}})
            for cluster in cluster_pairs([pairs[key] for key in sorted(pairs)], order=[task.id for task in tasks])]


def structural_pairs(workspace: Workspace, tasks: Sequence[Task]) -> list[tuple[int, int]]:
    """Every pair (i < j) of tasks that ask for the same answer from the same evidence span (document
    and offsets) through the same non-empty sequence of tool calls, whatever their kind or wording.
    Tool sequences are read only for tasks that share an answer and a span with another."""
    groups: dict[tuple[str, int, int, str], list[int]] = {}
    for row, task in enumerate(tasks):
        if task.document_id and task.span_start is not None and task.span_end is not None:
            key = (task.document_id, task.span_start, task.span_end, _fold(answer_text(task)))
            groups.setdefault(key, []).append(row)
    shared = [rows for rows in groups.values() if len(rows) > 1]
    if not shared:
        return []
    tools = workspace.store.tool_sequences([tasks[row].id for rows in shared for row in rows])
    pairs: list[tuple[int, int]] = []
    for rows in shared:
        by_tools: dict[tuple[str, ...], list[int]] = {}
        for row in rows:
            if tools[tasks[row].id]:
                by_tools.setdefault(tools[tasks[row].id], []).append(row)
        pairs.extend(pair for same in by_tools.values() for pair in itertools.combinations(same, 2))
    return sorted(pairs)


def is_duplicate(a: Task, b: Task, cosine: float, threshold: float, rules: LexicalRules) -> bool:
    """A candidate pair's verdict: above the threshold, unless the specifics differ; below it (the
    same-answer channel), only when the specifics are the same."""
    if cosine >= threshold:
        return not different_specifics(a, b, rules)
    return same_specifics(a, b, rules)


def same_text_pairs(tasks: Sequence[Task]) -> list[tuple[int, int]]:
    """Every pair (i < j) of tasks whose normalised texts are equal (the exact pass: one hash each)."""
    groups: dict[str, list[int]] = {}
    for row, task in enumerate(tasks):
        groups.setdefault(dedup_hash(task), []).append(row)
    return [pair for rows in groups.values() if len(rows) > 1 for pair in itertools.combinations(rows, 2)]


# ---- single tasks: find similar, gate -----------------------------------------------------------


def find_similar(workspace: Workspace, task_id: str, k: int = 5) -> list[tuple[Task, float]]:
    """The k stored tasks most similar to one task (any status), with cosine similarity, best first."""
    task = workspace.store.get_task(task_id)
    if task is None:
        raise TaskCraftError(f"No task with id {task_id}.", "Pick a task from the review queue.")
    sync_task_index(workspace)
    vector = task_vectors(workspace, [task])[0]
    neighbours = [(i, score) for i, score in workspace.index.nearest_tasks(vector, k + 1) if i != task_id][:k]
    found = {t.id: t for t in workspace.store.get_tasks([i for i, _ in neighbours], with_trajectory=False)}
    return [(found[i], score) for i, score in neighbours if i in found]


def gate_candidate(workspace: Workspace, task: Task, threshold: float | None = None) -> DuplicatePair | None:
    """The accepted or pending task a new candidate nearly duplicates, if any (the generation gate).

    The candidate need not be stored; statuses are checked in the database because the
    collection's metadata may lag behind reviews."""
    limit = _threshold(workspace, threshold)
    rules = LexicalRules.from_settings(workspace.settings)
    sync_task_index(workspace)
    vector = workspace.index.embed([dedup_text(task)])[0]
    near = [(i, s) for i, s in workspace.index.nearest_tasks(vector, GATE_NEIGHBOURS) if i != task.id and s >= limit]
    if not near:
        return None
    stored = {t.id: t for t in workspace.store.get_tasks([i for i, _ in near], with_trajectory=False)}
    dismissed = workspace.store.not_duplicate_pairs()
    for other_id, score in near:
        other = stored.get(other_id)
        if other is None or other.status not in GATE_STATUSES:
            continue
        if tuple(sorted((task.id, other_id))) in dismissed or different_specifics(task, other, rules):
            continue
        return label_pair(other, task, score, rules)
    return None


def gate_outcome(settings: Settings, task: Task, pair: DuplicatePair) -> Task:
    """The candidate the gate matched: "duplicate" (duplicate_action skip), or left in the review
    queue with the suspicion written on it (flag)."""
    other = pair.b if pair.a == task.id else pair.a
    if settings.duplicate_action == "skip":
        return task.model_copy(update={"status": "duplicate", "failure_reason": f"near-duplicate of {other}"})
    return task.model_copy(update={"failure_reason": f"possible near-duplicate of {other}"})


# ---- decisions ----------------------------------------------------------------------------------


def keep_one(
    workspace: Workspace, task_ids: Sequence[str], keep_id: str, reviewer: str,
    *, seen_reviews: Mapping[str, int | None],
) -> None:
    """Keep one task of a cluster; every other one is rejected with the reason "duplicate of <keep_id>".
    All or nothing: `seen_reviews` is the cluster's `latest_review_ids`; if any member (the kept one
    included) was decided since, `ReviewConflict` names it and nothing changes."""
    reviewer = acting_reviewer(workspace.principal, reviewer)
    if keep_id not in task_ids:
        raise TaskCraftError(f"Task {keep_id} is not in this cluster.", "Keep one of the cluster's own tasks.")
    workspace.store.record_reviews(
        [task_id for task_id in task_ids if task_id != keep_id], reviewer, "reject", reason=f"duplicate of {keep_id}",
        expected_latest={task_id: seen_reviews[task_id] for task_id in task_ids},
    )


def dismiss_cluster(workspace: Workspace, task_ids: Sequence[str], reviewer: str) -> None:
    """Remember that the tasks of a cluster are not duplicates of one another (never shown again)."""
    reviewer = acting_reviewer(workspace.principal, reviewer)
    if not reviewer.strip():
        raise TaskCraftError("Dismissing a cluster needs the reviewer's name.", "Enter your name first.")
    for a, b in itertools.combinations(task_ids, 2):
        workspace.store.mark_not_duplicates(a, b, reviewer.strip())


def duplicates_to_drop(clusters: Sequence[DuplicateCluster], accepted: AbstractSet[str] = frozenset()) -> set[str]:
    """All but one task of each cluster: the first accepted task is kept, else the first task."""
    dropped: set[str] = set()
    for cluster in clusters:
        keep = next((i for i in cluster.task_ids if i in accepted), cluster.task_ids[0])
        dropped.update(i for i in cluster.task_ids if i != keep)
    return dropped
