"""Near-duplicate search at 36,000 tasks, and quality on the labelled paraphrase pairs.

Prints:
1. embed + index + cluster time of `find_near_duplicates` on a cold index (and warm), by stage;
2. recall of its pairs against brute-force cosine at the same threshold (on sampled rows, by full
   row products), and the same for the HNSW alternative (one Chroma query per task);
3. precision/recall against the generator's planted duplicates, and recall by kind of rewriting:
   copies and rewordings of the kinds the normalisation was tuned on and of held-out kinds it was
   not (bench/make_tasks.py), and the share of distinct facts (same-template siblings above all)
   merged with another;
4. precision/recall on tests/fixtures/paraphrase_pairs.jsonl for our method and MinHash LSH
   (MinHash is not run on the 36k synthetic set: its shared template bigrams make it return
   tens of millions of candidate pairs).

    python -m bench.bench_dedup [--n 36000] [--threshold 0.92]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from datasketch import MinHash, MinHashLSH

from bench.make_tasks import HELD_OUT_KINDS, TUNING_KINDS, Planted, make_tasks, write_tasks
from taskcraft_core.curate.dedup import (
    DEFAULT_RULES,
    answer_codes,
    cosine_pairs,
    different_specifics,
    find_near_duplicates,
    is_duplicate,
    same_answer_pairs,
    same_specifics,
)
from taskcraft_core.index.normalise import dedup_text
from taskcraft_core.index.task_vectors import task_vectors
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

SAME_ANSWER = Settings().same_answer_threshold
PLURAL = {"copy": "copies", "rewording": "rewordings"}
PLANTED_KINDS = (*TUNING_KINDS, *HELD_OUT_KINDS, "sibling", "sibling")  # siblings: twice as often as a kind
PAIRS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "paraphrase_pairs.jsonl"


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    print(f"  {label:<46} {time.perf_counter() - started:7.2f} s")
    return result


def pr(predicted: set, truth: set) -> str:
    hit = len(predicted & truth)
    precision = hit / len(predicted) if predicted else 1.0
    recall = hit / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return (f"precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}  "
            f"({len(predicted)} predicted, {len(truth)} true)")


def shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 2]) for i in range(len(words) - 1)} | set(words)


def minhash(text: str, perms: int = 128) -> MinHash:
    m = MinHash(num_perm=perms)
    for shingle in shingles(text):
        m.update(shingle.encode("utf-8"))
    return m


def scale(n: int, threshold: float) -> None:
    print(f"== {n} tasks, cosine threshold {threshold}")
    home = Path(tempfile.mkdtemp(prefix="bench_dedup_"))
    tasks, planted = make_tasks(n, duplicate_share=0.25, kinds=PLANTED_KINDS)
    workspace = Workspace.open(Settings(home=home))
    write_tasks(workspace.store, tasks)
    everything = TaskFilter()

    print("find_near_duplicates, cold index (load + embed + index in Chroma + exact pairs + specifics + clusters):")
    started, cpu = time.perf_counter(), time.process_time()
    clusters = find_near_duplicates(workspace, threshold, everything)
    cold = time.perf_counter() - started
    print(f"  total {cold:.2f} s wall, {time.process_time() - cpu:.2f} s CPU (all threads; the wall time on a "
          f"loaded machine is longer); {len(clusters)} clusters, {sum(len(c.pairs) for c in clusters)} pairs")
    started, cpu = time.perf_counter(), time.process_time()
    assert find_near_duplicates(workspace, threshold, everything) == clusters
    print(f"  warm (vectors read back from Chroma) {time.perf_counter() - started:.2f} s wall, "
          f"{time.process_time() - cpu:.2f} s CPU, same clusters")
    print(f"  load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

    print("stages, warm:")
    ids = workspace.store.list_task_ids(everything)
    loaded = timed("load task texts from the database", lambda: [
        t for s in range(0, len(ids), 1000)
        for t in workspace.store.get_tasks(ids[s : s + 1000], with_trajectory=False)])
    timed("embed all (wordllama, for reference)", workspace.index.embed, [dedup_text(t) for t in loaded])
    vectors = timed("vectors from Chroma (hash-checked)", task_vectors, workspace, loaded)
    codes = answer_codes(loaded)
    threshold_pairs = timed("exact blockwise cosine pairs", cosine_pairs, vectors, threshold)
    same_answer = timed("same-answer pairs (cosine within answer groups)", same_answer_pairs, vectors, codes,
                        SAME_ANSWER)
    print(f"  same-answer candidates {len(same_answer)}")
    merged = {(i, j): c for i, j, c in [*same_answer, *threshold_pairs]}
    candidates = [(i, j, c) for (i, j), c in sorted(merged.items())]
    kept = timed("specifics check on candidates", lambda: [
        (i, j) for i, j, c in candidates if is_duplicate(loaded[i], loaded[j], c, threshold, DEFAULT_RULES)])
    print(f"  candidates {len(candidates)}, kept after specifics {len(kept)}")

    rng = np.random.default_rng(0)
    sample = rng.choice(len(vectors), size=min(1000, len(vectors)), replace=False)
    brute = {(min(i, j), max(i, j)) for i in sample for j in np.nonzero(vectors @ vectors[i] >= threshold)[0] if j != i}
    found = {(i, j) for i, j, _ in threshold_pairs}
    print(f"recall vs brute force (all pairs touching {len(sample)} sampled rows): "
          f"{len(brute & found) / max(len(brute), 1):.4f} of {len(brute)}")

    collection = workspace.index.collection("tasks")
    started = time.perf_counter()
    hnsw: set[tuple[int, int]] = set()
    row = {task.id: i for i, task in enumerate(loaded)}
    for start in range(0, len(vectors), 1000):
        result = collection.query(query_embeddings=vectors[start : start + 1000], n_results=10, include=["distances"])
        for offset, (hits, distances) in enumerate(zip(result["ids"], result["distances"], strict=False)):
            hnsw.update((min(start + offset, row[h]), max(start + offset, row[h]))
                        for h, d in zip(hits, distances, strict=False)
                        if 1 - d >= threshold and row[h] != start + offset)
    hnsw_time = time.perf_counter() - started
    print(f"HNSW alternative (Chroma query k=10 per task): {hnsw_time:.2f} s, "
          f"recall vs exact {len(hnsw & found) / max(len(found), 1):.4f} of {len(found)} pairs above the threshold")

    truth = set()
    for original, copies in planted.groups.items():
        truth.update(tuple(sorted(p)) for p in itertools.combinations([original, *copies], 2))
    predicted = {tuple(sorted((p.a, p.b))) for c in clusters for p in c.pairs}
    print(f"pairs against planted duplicates: {pr(predicted, truth)}")
    planted_report(clusters, planted, [task.id for task in loaded])


def share(hits: list[bool]) -> float:
    return sum(hits) / max(1, len(hits))


def planted_report(clusters: list, planted: Planted, all_ids: list[str]) -> None:
    """Recall by kind of rewriting (a duplicate counts as found when it shares a cluster with its
    original), grouped into copies and rewordings of the tuning and the held-out families; and how
    many distinct facts were merged with another (same-template siblings most of all)."""
    cluster_of = {task_id: n for n, c in enumerate(clusters) for task_id in c.task_ids}
    original_of = {d: o for o, ds in planted.groups.items() for d in ds}
    found = {d: cluster_of.get(d) is not None and cluster_of.get(d) == cluster_of.get(o)
             for d, o in original_of.items()}
    print("recall by kind of rewriting (duplicate in its original's cluster):")
    for family, kinds in (("tuning", TUNING_KINDS), ("held-out", HELD_OUT_KINDS)):
        for group in ("copy", "rewording"):
            members = [k for k, g in kinds.items() if g == group]
            ids = [d for d, k in planted.kinds.items() if k in members]
            per_kind = ", ".join(f"{k} {share([found[d] for d in ids if planted.kinds[d] == k]):.3f}" for k in members)
            print(f"  {family:<8} {PLURAL[group]:<10} {share([found[d] for d in ids]):.3f} "
                  f"of {len(ids):>5}   ({per_kind})")
    for group in ("copy", "rewording"):
        ids = [d for d, k in planted.kinds.items() if {**TUNING_KINDS, **HELD_OUT_KINDS}[k] == group]
        print(f"  all      {PLURAL[group]:<10} {share([found[d] for d in ids]):.3f} of {len(ids):>5}")
    fact = {task_id: original_of.get(task_id, task_id) for task_id in all_ids}
    facts_in: dict[int, set[str]] = {}
    for task_id, n in cluster_of.items():
        facts_in.setdefault(n, set()).add(fact[task_id])
    merged = {f for fs in facts_in.values() if len(fs) > 1 for f in fs}
    distinct = set(fact.values())
    siblings_merged = sum(cluster_of.get(s) is not None and cluster_of.get(s) == cluster_of.get(o)
                          for s, o in planted.siblings.items())
    print(f"distinct facts merged with another fact: {len(merged) / len(distinct):.4f} "
          f"({len(merged)} of {len(distinct)}); "
          f"same-template siblings merged: {siblings_merged / max(1, len(planted.siblings)):.4f} "
          f"({siblings_merged} of {len(planted.siblings)})")


def labelled(thresholds: list[float]) -> None:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    print(f"== labelled pairs: {len(rows)} ({sum(r['label'] == 'paraphrase' for r in rows)} paraphrase)")
    workspace = Workspace.open(Settings(home=Path(tempfile.mkdtemp(prefix="bench_pairs_"))))

    def task(i: str, q: str, a: str) -> Task:
        return Task(id=i, kind="atomic", question=q, golden_answer=a, content_identifier="", engine="b", model="b")

    a = [task(f"a{n}", r["a"], r["answer_a"]) for n, r in enumerate(rows)]
    b = [task(f"b{n}", r["b"], r["answer_b"]) for n, r in enumerate(rows)]
    cos = (workspace.index.embed([dedup_text(t) for t in a]) * workspace.index.embed([dedup_text(t) for t in b])).sum(1)
    truth = {n for n, r in enumerate(rows) if r["label"] == "paraphrase"}
    guard = {n for n in range(len(rows)) if not different_specifics(a[n], b[n])}
    same_answer = {n for n in range(len(rows)) if cos[n] >= SAME_ANSWER and same_specifics(a[n], b[n])}
    for threshold in thresholds:
        cosine_only = {n for n in range(len(rows)) if cos[n] >= threshold}
        print(f"  cosine >= {threshold:.2f}            {pr(cosine_only, truth)}")
        print(f"  cosine + specifics {threshold:.2f}  {pr(cosine_only & guard, truth)}")
        print(f"  ours (+ same answer {SAME_ANSWER:.2f}) {pr((cosine_only & guard) | same_answer, truth)}")
    for jaccard in (0.3, 0.5, 0.7):
        lsh = MinHashLSH(threshold=jaccard, num_perm=128)
        for n, t in enumerate(a):
            lsh.insert(str(n), minhash(dedup_text(t)))
        found = {n for n in range(len(rows)) if str(n) in lsh.query(minhash(dedup_text(b[n])))}
        print(f"  MinHash LSH Jaccard {jaccard:.1f}      {pr(found, truth)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=36_000)
    parser.add_argument("--threshold", type=float, default=Settings().duplicate_threshold)
    parser.add_argument("--skip-labelled", action="store_true")
    args = parser.parse_args()
    if not args.skip_labelled:
        labelled([0.80, 0.85, 0.88, 0.92])
    scale(args.n, args.threshold)


if __name__ == "__main__":
    main()
