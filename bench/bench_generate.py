"""Atomic generation with the LLM engine against the stub server: a run at concurrency 1 versus 8.

The stub OpenAI-compatible server (tests/stub_openai.py) answers every request after a fixed
latency, playing a model that follows our prompts (tests/prompt_following.py): facts are extracted
the way the offline engine extracts them (numbers, dates, names copied from the passage), questions
are written from them, the model alone does not know, and the solving agent searches the corpus
with the real `search_corpus` tool, then answers. So every step of the method runs for real — the
real ChatOpenAI client, structured outputs, the LangChain agent loop, the run executor and the store —
and the ratio measures how well a run overlaps waiting for the model.

    python -m bench.bench_generate [--latency-ms 50] [--concurrency 1 8] [--documents 6]

Prints per concurrency: wall time, verified atomic tasks per second, model calls and tokens per
verified task; then the throughput ratio.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_concurrency import compare_concurrency
from taskcraft_core.ingest.pipeline import load_sample_corpus
from taskcraft_core.runs.service import RunRequest, create_run, execute_run, run_summary
from taskcraft_core.schema import GenerationRun
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
from tests.prompt_following import PromptFollowingModel
from tests.stub_openai import StubOpenAI


def timed_run(stub: StubOpenAI, home: Path, concurrency: int, documents: int) -> tuple[float, GenerationRun]:
    settings = Settings(home=home, openai_base_url=stub.base_url, model="stub-model", cache_responses=False,
                        max_retries=0)
    workspace = Workspace.open(settings)
    load_sample_corpus(workspace)
    chosen = [summary.id for summary in workspace.store.list_documents()][:documents]
    run = create_run(workspace, RunRequest(kinds=["atomic"], engine="openai", concurrency=concurrency,
                                           document_ids=chosen))
    started = time.perf_counter()
    finished = execute_run(workspace, run.id)
    return time.perf_counter() - started, finished


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--documents", type=int, default=6, help="Sample-corpus documents to generate from "
                        "(a work unit is a chunk, so fewer chunks than threads caps the overlap).")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # one line per HTTP request would drown the numbers
    with tempfile.TemporaryDirectory() as home, StubOpenAI(latency_s=args.latency_ms / 1000,
                                                          default=PromptFollowingModel()) as stub:
        timed_run(stub, Path(home) / "warm-up", 1, 1)  # imports, embeddings, connection pool
        print(f"stub latency {args.latency_ms:.0f} ms per call; atomic tasks from {args.documents} sample documents")

        def measure(concurrency: int) -> tuple[float, str]:
            seconds, run = timed_run(stub, Path(home) / f"c{concurrency}", concurrency, args.documents)
            summary = run_summary(run)
            verified = max(1, summary.accepted)
            throughput = summary.accepted / seconds
            errors = f"; errors: {[e.model_dump() for e in summary.errors]}" if summary.errors else ""
            return throughput, (
                f"{seconds:6.1f} s, {summary.candidates} candidates, {summary.accepted} verified, "
                f"{throughput:5.2f} verified tasks/s; per verified task {run.model_calls / verified:.2f} model calls, "
                f"{run.tokens / verified:.0f} tokens{errors}"
            )

        compare_concurrency(args.concurrency, measure, "throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
