"""Atomic generation with the LLM engine against the stub server: a run at concurrency 1 versus 8.

The stub OpenAI-compatible server (tests/stub_openai.py) answers every request after a fixed
latency, playing a model that follows our prompts (generate/prompts.py): facts are extracted the
way the offline engine extracts them (numbers, dates, names copied from the passage), questions are
written from them, the model alone does not know, and the solving agent searches the corpus with
the real `search_corpus` tool, then answers. So every step of the method runs for real — the real
ChatOpenAI client, structured outputs, the LangChain agent loop, the run executor and the store —
and the ratio measures how well a run overlaps waiting for the model.

    python bench/bench_generate.py [--latency-ms 50] [--concurrency 1 8] [--documents 6]

Prints per concurrency: wall time, verified atomic tasks per second, model calls and tokens per
verified task; then the throughput ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_concurrency import compare_concurrency  # noqa: E402
from stub_openai import RecordedRequest, Reply, StubOpenAI, completion, tool_call_reply  # noqa: E402
from taskcraft_core.generate.engine import Conclusion  # noqa: E402
from taskcraft_core.generate.text import match_score  # noqa: E402
from taskcraft_core.generate.verify import question_key  # noqa: E402
from taskcraft_core.ingest import load_sample_corpus  # noqa: E402
from taskcraft_core.llm import Usage  # noqa: E402
from taskcraft_core.offline import OfflineEngine  # noqa: E402
from taskcraft_core.runs import RunRequest, create_run, execute_run, run_summary  # noqa: E402
from taskcraft_core.schema import Chunk, Document, GenerationRun  # noqa: E402
from taskcraft_core.settings import Settings  # noqa: E402
from taskcraft_core.workspace import Workspace  # noqa: E402

CONCLUSIONS = re.compile(r"passage of the document “(?P<identifier>.*?)”\..*?Give at most (?P<limit>\d+) facts.*?"
                         r"\n\nPassage:\n(?P<text>.*)\Z", re.S)
QUESTION = re.compile(r"single correct answer is “(?P<answer>.*?)”\.\nSource to name as a hint: “(?P<identifier>.*?)”\. "
                      r"Relation to ask about: (?P<relation>.*?)\.\nEvidence: (?P<evidence>.*?)\nThe question must", re.S)
CANONICAL = re.compile(r"Answer as found in the source: (?P<answer>.*?)\nEvidence:", re.S)
JUDGE = re.compile(r"Golden answer: (?P<golden>.*?)\nAnswer: (?P<answer>.*)\Z", re.S)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


class PromptFollowingModel:
    """The stub's responder: a deterministic model that answers each of our prompts sensibly.
    It remembers the answer of every question it wrote, which is what its agent answers later."""

    def __init__(self) -> None:
        self.offline = OfflineEngine()
        self.answers: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.body or {}
        messages = body.get("messages", [])
        prompt_tokens = max(1, len(json.dumps(messages)) // 4)
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            payload = self.structured(response_format["json_schema"]["name"], _text(messages[-1]))
            content = json.dumps(payload)
            return Reply(body=completion(content, prompt_tokens=prompt_tokens, completion_tokens=len(content) // 4))
        if body.get("tools"):
            return self.solver_turn(messages, prompt_tokens)
        return Reply(body=completion("I don't know", prompt_tokens=prompt_tokens, completion_tokens=3))

    def structured(self, schema: str, prompt: str) -> dict[str, Any]:
        if schema == "ConclusionsOut":
            return {"conclusions": self.conclusions(prompt)}
        if schema == "QuestionOut":
            return {"question": self.question(prompt)}
        if schema == "AnswerOut":
            return {"answer": _match(CANONICAL, prompt)["answer"].strip()}
        if schema == "JudgeOut":
            found = _match(JUDGE, prompt)
            return {"score": match_score(found["golden"], found["answer"]), "rationale": "compared"}
        raise ValueError(f"the benchmark model has no answer for {schema}")

    def conclusions(self, prompt: str) -> list[dict[str, str]]:
        found = _match(CONCLUSIONS, prompt)
        text, identifier = found["text"], found["identifier"]
        document = Document(id="d", source="d", content_hash="d", title=identifier, doc_type="text", text=text)
        chunk = Chunk(id="d:0", document_id="d", position=0, text=text, start=0, end=len(text))
        facts = self.offline.extract_conclusions(identifier, document, chunk, Usage())[: int(found["limit"])]
        return [{"answer": f.answer, "relation": f.relation, "evidence": f.evidence} for f in facts]

    def question(self, prompt: str) -> str:
        found = _match(QUESTION, prompt)
        evidence, answer = found["evidence"], found["answer"]
        at = evidence.find(answer)
        conclusion = Conclusion(answer=answer, relation=found["relation"], evidence=evidence, span_start=at,
                                span_end=at + len(answer), evidence_start=0)
        try:
            question = self.offline.write_question(found["identifier"], conclusion, Usage())
        except StopIteration:  # the answer also occurs earlier in the sentence: ask by the relation
            question = f"According to “{found['identifier']}”, what is {found['relation']}?"
        with self.lock:
            self.answers[question_key(question)] = answer
        return question

    def solver_turn(self, messages: list[dict[str, Any]], prompt_tokens: int) -> Reply:
        question = next(_text(m) for m in messages if m.get("role") == "user")
        if not any(m.get("role") == "tool" for m in messages):
            return tool_call_reply("search_corpus", {"query": question}, prompt_tokens=prompt_tokens, completion_tokens=20)
        with self.lock:
            answer = self.answers.get(question_key(question), "I don't know")
        return Reply(body=completion(answer, prompt_tokens=prompt_tokens, completion_tokens=len(answer) // 4 + 1))


def _match(pattern: re.Pattern[str], prompt: str) -> dict[str, str]:
    found = pattern.search(prompt)
    if found is None:
        raise ValueError(f"prompt not understood by the benchmark model: {prompt[:120]!r}")
    return found.groupdict()


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
            verified = max(1, int(summary["accepted"]))
            throughput = summary["accepted"] / seconds
            return throughput, (
                f"{seconds:6.1f} s, {summary['candidates']} candidates, {summary['accepted']} verified, "
                f"{throughput:5.2f} verified tasks/s; per verified task {run.model_calls / verified:.2f} model calls, "
                f"{run.tokens / verified:.0f} tokens{'; errors: ' + str(summary['errors']) if summary['errors'] else ''}")

        compare_concurrency(args.concurrency, measure, "throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
