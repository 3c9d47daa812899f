"""Near-duplicate search at 36,000 tasks, and quality on the labelled paraphrase pairs.

Prints:
1. embed + index + cluster time of `find_near_duplicates` on a cold index (and warm), by stage;
2. recall of its pairs against brute-force cosine at the same threshold (on sampled rows, by full
   row products), and the same for the HNSW alternative (one Chroma query per task);
3. precision/recall against the generator's planted duplicates;
4. precision/recall on tests/fixtures/paraphrase_pairs.jsonl for our method and MinHash LSH
   (MinHash is not run on the 36k synthetic set: its shared template bigrams make it return
   tens of millions of candidate pairs).

    python -m bench.bench_dedup [--n 36000] [--threshold 0.92]
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from datasketch import MinHash, MinHashLSH

from bench.make_tasks import make_tasks, write_tasks
from taskcraft_core.curate.dedup import cosine_pairs, different_specifics, find_near_duplicates
from taskcraft_core.index.task_vectors import task_vectors
from taskcraft_core.index.vectors import task_text
from taskcraft_core.schema import Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

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
    return (
        f"precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}  ({len(predicted)} predicted, {len(truth)} true)"
    )


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
    tasks, planted = make_tasks(n)
    workspace = Workspace.open(Settings(home=home))
    write_tasks(workspace.store, tasks)
    everything = TaskFilter()

    print("find_near_duplicates, cold index (load + embed + index in Chroma + exact pairs + specifics + clusters):")
    started = time.perf_counter()
    clusters = find_near_duplicates(workspace, threshold, everything)
    cold = time.perf_counter() - started
    print(f"  total {cold:.2f} s; {len(clusters)} clusters, {sum(len(c.pairs) for c in clusters)} pairs")
    started = time.perf_counter()
    assert find_near_duplicates(workspace, threshold, everything) == clusters
    print(f"  warm (vectors read back from Chroma) {time.perf_counter() - started:.2f} s, same clusters")

    print("stages, warm:")
    ids = workspace.store.list_task_ids(everything)
    loaded = timed("load task texts from the database", lambda: [
        t for s in range(0, len(ids), 1000)
        for t in workspace.store.get_tasks(ids[s : s + 1000], with_trajectory=False)])
    timed("embed all (wordllama, for reference)", workspace.index.embed, [task_text(t) for t in loaded])
    vectors = timed("vectors from Chroma (hash-checked)", task_vectors, workspace, loaded)
    candidates = timed("exact blockwise cosine pairs", cosine_pairs, vectors, threshold)
    kept = timed("specifics check on candidates", lambda: [
        (i, j) for i, j, _ in candidates if not different_specifics(loaded[i], loaded[j])])
    print(f"  candidates {len(candidates)}, kept after specifics {len(kept)}")

    rng = np.random.default_rng(0)
    sample = rng.choice(len(vectors), size=min(1000, len(vectors)), replace=False)
    brute = {(min(i, j), max(i, j)) for i in sample for j in np.nonzero(vectors @ vectors[i] >= threshold)[0] if j != i}
    found = {(i, j) for i, j, _ in candidates}
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
          f"recall vs exact {len(hnsw & found) / max(len(found), 1):.4f} of {len(found)} pairs")

    truth = set()
    for original, copies in planted.groups.items():
        truth.update(tuple(sorted(p)) for p in itertools.combinations([original, *copies], 2))
    predicted = {tuple(sorted((p.a, p.b))) for c in clusters for p in c.pairs}
    print(f"against planted duplicates: {pr(predicted, truth)}")
    by_kind = {k: {tuple(sorted((o, d))) for o, ds in planted.groups.items() for d in ds if planted.kinds[d] == k}
               for k in ("copy", "light_edit", "paraphrase")}
    print("  recall by kind: " + ", ".join(f"{k} {len(v & predicted) / len(v):.3f}" for k, v in by_kind.items()))



def labelled(thresholds: list[float]) -> None:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    print(f"== labelled pairs: {len(rows)} ({sum(r['label'] == 'paraphrase' for r in rows)} paraphrase)")
    workspace = Workspace.open(Settings(home=Path(tempfile.mkdtemp(prefix="bench_pairs_"))))

    def task(i: str, q: str, a: str) -> Task:
        return Task(id=i, kind="atomic", question=q, golden_answer=a, content_identifier="", engine="b", model="b")

    a = [task(f"a{n}", r["a"], r["answer_a"]) for n, r in enumerate(rows)]
    b = [task(f"b{n}", r["b"], r["answer_b"]) for n, r in enumerate(rows)]
    cos = (workspace.index.embed([task_text(t) for t in a]) * workspace.index.embed([task_text(t) for t in b])).sum(1)
    truth = {n for n, r in enumerate(rows) if r["label"] == "paraphrase"}
    guard = {n for n in range(len(rows)) if not different_specifics(a[n], b[n])}
    for threshold in thresholds:
        cosine_only = {n for n in range(len(rows)) if cos[n] >= threshold}
        print(f"  cosine >= {threshold:.2f}            {pr(cosine_only, truth)}")
        print(f"  ours (cosine + specifics) {threshold:.2f} {pr(cosine_only & guard, truth)}")
    for jaccard in (0.3, 0.5, 0.7):
        lsh = MinHashLSH(threshold=jaccard, num_perm=128)
        for n, t in enumerate(a):
            lsh.insert(str(n), minhash(task_text(t)))
        found = {n for n in range(len(rows)) if str(n) in lsh.query(minhash(task_text(b[n])))}
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
