"""A deterministic model that follows our prompts (generate/prompts.py), as a stub-server responder.

Facts are extracted the way the offline engine extracts them (numbers, dates, names copied from the
passage), questions are written from them, the model alone does not know, and the solving agent
calls the real `search_corpus` tool once, then answers with the golden answer of the question it
wrote. Shared by bench/bench_generate.py and tests/test_openai_pipeline.py.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from taskcraft_core.generate.offline.engine import OfflineEngine
from taskcraft_core.generate.protocol import Conclusion
from taskcraft_core.generate.text import match_score
from taskcraft_core.generate.verify import question_key
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Chunk, Document
from tests.stub_openai import RecordedRequest, Reply, completion, tool_call_reply

CONCLUSIONS = re.compile(r"passage of the document “(?P<identifier>.*?)”\..*?Give at most (?P<limit>\d+) facts.*?"
                         r"\n\nPassage:\n(?P<text>.*)\Z", re.S)
QUESTION = re.compile(
    r"single correct answer is “(?P<answer>.*?)”\.\nSource to name as a hint: “(?P<identifier>.*?)”\. "
    r"Relation to ask about: (?P<relation>.*?)\.\nEvidence: (?P<evidence>.*?)\nThe question must",
    re.S,
)
CANONICAL = re.compile(r"Answer as found in the source: (?P<answer>.*?)\nEvidence:", re.S)
JUDGE = re.compile(r"Golden answer: (?P<golden>.*?)\nAnswer: (?P<answer>.*)\Z", re.S)


def message_text(message: dict[str, Any]) -> str:
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
            payload = self.structured(response_format["json_schema"]["name"], message_text(messages[-1]))
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
        raise ValueError(f"the prompt-following model has no answer for {schema}")

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
        question = next(message_text(m) for m in messages if m.get("role") == "user")
        if not any(m.get("role") == "tool" for m in messages):
            return tool_call_reply("search_corpus", {"query": question}, prompt_tokens=prompt_tokens,
                                   completion_tokens=20)
        with self.lock:
            answer = self.answers.get(question_key(question), "I don't know")
        return Reply(body=completion(answer, prompt_tokens=prompt_tokens, completion_tokens=len(answer) // 4 + 1))


def _match(pattern: re.Pattern[str], prompt: str) -> dict[str, str]:
    found = pattern.search(prompt)
    if found is None:
        raise ValueError(f"prompt not understood by the prompt-following model: {prompt[:120]!r}")
    return found.groupdict()
