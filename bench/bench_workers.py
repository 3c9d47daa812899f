"""Queue workers against the stub server: model calls per second with 1, 2 and 4 worker processes.

Each measurement is a real team deployment in miniature: a PostgreSQL server and a Chroma server
started here (as the tests start them), `python -m taskcraft_core worker --concurrency C` processes,
and an atomic run of the sample corpus with the LLM engine against the stub OpenAI-compatible server
(tests/stub_openai.py), which answers every call after a fixed latency as a model following our
prompts. Every worker runs at the same concurrency, so the ratio shows how a run scales with workers.

    python -m bench.bench_workers [--latency-ms 500] [--workers 1 2 4] [--concurrency 2] [--chunk-size 600]

Prints per worker count: wall time of the run (enqueue to completion), units, model calls, calls/s;
then each throughput as a ratio of the single worker's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from taskcraft_core.ingest.pipeline import load_sample_corpus
from taskcraft_core.runs.queue import queue_health
from taskcraft_core.runs.service import RunRequest, run_summary, start_run_in_background, wait_for_run
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
from tests.prompt_following import PromptFollowingModel
from tests.servers import chroma_server, fresh_database, postgres_server, start_worker, stop, wait_until
from tests.stub_openai import StubOpenAI


def measure(workers: int, args: argparse.Namespace, stub: StubOpenAI, postgres: str, chroma: str,
            home: Path) -> tuple[float, int, int]:
    """(seconds, units, model calls) of one atomic run executed by `workers` worker processes."""
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma.rsplit(":", 1)[1]))
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    settings = Settings(home=home / f"app{workers}", database_url=fresh_database(postgres), chroma_url=chroma,
                        workers="queue", openai_base_url=stub.base_url, model="stub-model", cache_responses=False,
                        max_retries=0, chunk_size=args.chunk_size, chunk_overlap=0, max_candidates_per_chunk=2)
    workspace = Workspace.open(settings)
    load_sample_corpus(workspace)
    env = {"TASKCRAFT_DATABASE_URL": settings.database_url or "", "TASKCRAFT_CHROMA_URL": chroma,
           "TASKCRAFT_WORKERS": "queue"}
    processes = [start_worker(home / f"w{workers}-{i}", env, "--concurrency", str(args.concurrency))
                 for i in range(workers)]
    try:
        # Measure the run, not the workers' start-up: wait until every worker has registered.
        wait_until(lambda: len([w for w in queue_health(workspace.store).workers if w.alive]) == workers, 120,
                   f"{workers} workers to start", every_s=0.5)
        started = time.perf_counter()
        run_id = start_run_in_background(workspace, RunRequest(kinds=["atomic"], engine="openai",
                                                               concurrency=args.concurrency))
        run = wait_for_run(workspace, run_id, poll_s=0.2)
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            stop(process)
    summary = run_summary(run)
    if run.status != "completed" or summary.errors:
        raise SystemExit(f"run {run.id} ended {run.status}: {run.error or summary.errors}")
    return seconds, len(run.done_units), run.model_calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=2, help="Units at once per worker (the same for all).")
    parser.add_argument("--chunk-size", type=int, default=600, help="Smaller chunks: more units than worker slots.")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as home, postgres_server() as postgres, chroma_server() as chroma, \
            StubOpenAI(latency_s=args.latency_ms / 1000, default=PromptFollowingModel()) as stub:
        print(f"stub latency {args.latency_ms:.0f} ms per call; atomic run of the sample corpus "
              f"(chunk size {args.chunk_size}); every worker at concurrency {args.concurrency}")
        rates: dict[int, float] = {}
        for workers in args.workers:
            seconds, units, calls = measure(workers, args, stub, postgres, chroma, Path(home))
            rates[workers] = calls / seconds
            print(f"{workers} worker(s): {seconds:6.1f} s, {units} units, {calls} model calls, "
                  f"{rates[workers]:5.2f} calls/s", flush=True)
        base = rates[args.workers[0]]
        print("throughput vs " + f"{args.workers[0]} worker(s): " +
              ", ".join(f"{workers} -> {rate / base:.2f}x" for workers, rate in rates.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
