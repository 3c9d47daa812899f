"""Throughput of structured model calls at concurrency 1 versus 8, against the stub server.

The stub OpenAI-compatible server (tests/stub_openai.py) answers every request after a fixed
latency, so the ratio measures how well the client layer overlaps waiting, not model speed.

    python -m bench.bench_concurrency [--calls 32] [--latency-ms 100] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from taskcraft_core.models.chat import Usage, invoke_structured, make_chat_model
from taskcraft_core.settings import Settings
from tests.stub_openai import StubOpenAI, answer_with


class Conclusion(BaseModel):
    """A small structured answer, like one extracted candidate."""

    relation: str
    answer: str


def latency_stub(latency_s: float) -> StubOpenAI:
    """A stub server (use it as a context manager) answering every chat request with a valid
    Conclusion after latency_s."""
    conclusion = {"relation": "zero-shot MMLU accuracy of Humpback65B", "answer": "54.9%"}
    reply = answer_with(conclusion, prompt_tokens=120, completion_tokens=30)
    return StubOpenAI(latency_s=latency_s, default=reply)


def stub_settings(stub: StubOpenAI, home: Path) -> Settings:
    """Settings for the stub: no cache (every call must reach the server), no retries."""
    return Settings(home=home, openai_base_url=stub.base_url, model="stub-model", cache_responses=False, max_retries=0)


def measure_throughput(settings: Settings, calls: int, concurrency: int) -> tuple[float, Usage]:
    """Calls per second for `calls` independent structured calls on `concurrency` threads."""
    model = make_chat_model(settings, "generation")
    usage = Usage()
    prompts = [[HumanMessage(f"Extract one conclusion from passage {number}.")] for number in range(calls)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda prompt: invoke_structured(model, Conclusion, prompt, usage=usage), prompts))
    return calls / (time.perf_counter() - started), usage


def compare_concurrency(levels: Sequence[int], measure: Callable[[int], tuple[float, str]], what: str) -> None:
    """Measure each concurrency level (throughput, and a line describing it), print a line per level,
    then the ratio of the highest level's throughput to the lowest's."""
    throughputs = {}
    for concurrency in levels:
        throughputs[concurrency], line = measure(concurrency)
        print(f"concurrency {concurrency:>2}: {line}")
    low, high = min(throughputs), max(throughputs)
    print(f"{what} ratio concurrency {high} / {low}: {throughputs[high] / throughputs[low]:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, latency_stub(args.latency_ms / 1000) as stub:
        settings = stub_settings(stub, Path(home))
        measure_throughput(settings, calls=2, concurrency=1)  # warm-up: imports, connection pool
        print(f"stub latency {args.latency_ms:.0f} ms per call, {args.calls} structured calls per run")

        def measure(concurrency: int) -> tuple[float, str]:
            throughput, usage = measure_throughput(settings, args.calls, concurrency)
            return throughput, f"{throughput:6.1f} calls/s  ({usage.calls} calls, {usage.tokens} tokens)"

        compare_concurrency(args.concurrency, measure, "calls/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
