"""Export formats: the registry, and the built-ins registered through it — the JSONL contract,
conversations for fine-tuning (OpenAI chat with tool calls, ShareGPT) and tables (Parquet, CSV, a
Hugging Face `datasets` folder). A user's own format goes through the same `register_exporter`.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from taskcraft_core.curate.records import Record
from taskcraft_core.errors import TaskCraftError


class Exporter(Protocol):
    """A format: its name, the file extension ("" for a folder) and a writer of records."""

    name: str
    extension: str
    description: str

    def write(self, records: Iterable[Record], out: Path) -> list[Path]:
        """Write the records to `out`; return the files written."""
        ...


EXPORT_FORMATS: dict[str, Exporter] = {}


def register_exporter(exporter: Exporter) -> Exporter:
    EXPORT_FORMATS[exporter.name] = exporter
    return exporter


class JsonLinesExporter:
    """One JSON object per line, each made from a record by a conversion function."""

    def __init__(self, name: str, description: str, convert: Callable[[Record], Record]) -> None:
        self.name, self.description, self.extension, self.convert = name, description, ".jsonl", convert

    def write(self, records: Iterable[Record], out: Path) -> list[Path]:
        with out.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(self.convert(record), ensure_ascii=False))
                handle.write("\n")
        return [out]


def _identity(record: Record) -> Record:
    return record



def exporter_for(fmt: str) -> Exporter:
    if fmt not in EXPORT_FORMATS:
        raise TaskCraftError(f"Unknown export format {fmt!r}.", f"Choose one of: {', '.join(EXPORT_FORMATS)}.")
    return EXPORT_FORMATS[fmt]



register_exporter(JsonLinesExporter("jsonl", "The record contract, one task per line.", _identity))


SYSTEM_PROMPT = (
    "You are a research agent. Use the tools to find the answer in the available documents, "
    "then reply with the answer only."
)
TABLE_BATCH = 1000


def answer_text(answer: str | list[str]) -> str:
    return answer if isinstance(answer, str) else "; ".join(answer)


# ---- conversations ------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}.get(type(value), "string")


def tool_definitions(record: Record) -> list[dict[str, Any]]:
    """OpenAI function definitions for the tools a trajectory calls, parameters read from the calls."""
    tools: dict[str, dict[str, Any]] = {}
    for step in record["trajectory"]:
        if step["tool"]:
            properties = tools.setdefault(step["tool"], {})
            for key, value in (step["args"] or {}).items():
                properties.setdefault(key, {"type": _json_type(value)})
    return [{"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": props}}}
            for name, props in tools.items()]


class _Conversation:
    """Builds an OpenAI message list from trajectory steps, pairing every tool call with its result."""

    def __init__(self, question: str) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT},
                                               {"role": "user", "content": question}]
        self.pending: list[tuple[str, str]] = []  # (call id, tool name) awaiting a result
        self.calls = 0

    def say(self, content: str) -> None:
        if content:
            self.messages.append({"role": "assistant", "content": content})

    def call(self, content: str, tool: str, args: dict[str, Any] | None) -> None:
        self.calls += 1
        call: dict[str, Any] = {"id": f"call_{self.calls}", "type": "function",
                "function": {"name": tool, "arguments": json.dumps(args or {}, ensure_ascii=False)}}
        last = self.messages[-1]
        # Calls requested in one model turn share one assistant message (the first carries the text).
        if last["role"] == "assistant" and last.get("tool_calls") and not content and self.pending:
            last["tool_calls"].append(call)
        else:
            self.messages.append({"role": "assistant", "content": content, "tool_calls": [call]})
        self.pending.append((call["id"], tool))

    def result(self, tool: str, args: dict[str, Any] | None, observation: str) -> None:
        match = next((p for p in self.pending if p[1] == tool), None)
        if match is None:  # a result whose call was not recorded: state the call first
            self.call("", tool, args)
            match = self.pending[-1]
        self.pending.remove(match)
        self.messages.append({"role": "tool", "tool_call_id": match[0], "content": observation})

    def finish(self, answer: str) -> list[dict[str, Any]]:
        for call_id, _tool in list(self.pending):
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": "(no result recorded)"})
        self.pending.clear()
        last = self.messages[-1]
        if last["role"] == "assistant" and not last.get("tool_calls"):
            self.messages.pop()  # the agent's own final words give way to the golden answer
        self.messages.append({"role": "assistant", "content": answer})
        return self.messages


def chat_messages(record: Record) -> list[dict[str, Any]]:
    """The trajectory as OpenAI chat messages: system, the question, tool calls and results, and the
    golden answer as the final assistant message. Sub-questions of depth hops become assistant notes."""
    conversation = _Conversation(record["question"])
    for step in record["trajectory"]:
        if step["type"] == "human":
            if step["content"] != record["question"]:
                conversation.say(f"Sub-question: {step['content']}")
        elif step["type"] == "ai":
            if step["tool"]:
                conversation.call(step["content"], step["tool"], step["args"])
            else:
                conversation.say(step["content"])
        elif step["type"] == "tool":
            conversation.result(step["tool"] or "tool", step["args"], step["observation"] or "")
    return conversation.finish(answer_text(record["golden_answer"]))


def openai_chat(record: Record) -> Record:
    return {"messages": chat_messages(record), "tools": tool_definitions(record)}


def sharegpt(record: Record) -> Record:
    """ShareGPT with tool use: human, gpt, function_call and observation turns."""
    turns: list[dict[str, str]] = []
    for message in chat_messages(record)[1:]:
        if message["role"] == "user":
            turns.append({"from": "human", "value": message["content"]})
        elif message["role"] == "tool":
            turns.append({"from": "observation", "value": message["content"]})
        else:
            if message["content"]:
                turns.append({"from": "gpt", "value": message["content"]})
            for call in message.get("tool_calls", []):
                value = {"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"])}
                turns.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
    return {"id": record["id"], "system": SYSTEM_PROMPT, "conversations": turns,
            "tools": json.dumps([d["function"] for d in tool_definitions(record)], ensure_ascii=False)}


# ---- tables -------------------------------------------------------------------------------------

_SOURCE = pa.struct([("document_id", pa.string()), ("title", pa.string()), ("chunk_id", pa.string()),
                     ("start", pa.int64()), ("end", pa.int64())])
_STEP = pa.struct([("type", pa.string()), ("content", pa.string()), ("tool", pa.string()),
                   ("args", pa.string()), ("observation", pa.string())])
_CHECK = pa.struct([("model_alone_answer", pa.string()), ("model_alone_score", pa.int64()),
                    ("agent_answer", pa.string()), ("agent_score", pa.int64())])
_REVIEW = pa.struct([("reviewer", pa.string()), ("decision", pa.string()), ("reason", pa.string()),
                     ("edits", pa.string()), ("time", pa.string()), ("override", pa.bool_()),
                     ("adjudication", pa.bool_())])
TABLE_SCHEMA = pa.schema([
    ("id", pa.string()), ("kind", pa.string()), ("question", pa.string()), ("golden_answer", pa.list_(pa.string())),
    ("content_identifier", pa.string()), ("relation", pa.string()), ("guideline", pa.string()), ("hops", pa.int64()),
    ("difficulty", pa.int64()), ("engine", pa.string()), ("model", pa.string()), ("status", pa.string()),
    ("source", _SOURCE), ("parents", pa.list_(pa.string())), ("trajectory", pa.list_(_STEP)),
    ("verification", _CHECK), ("review", _REVIEW), ("reviews", pa.list_(_REVIEW)), ("checks", pa.string()),
])


# Cells starting with these are formulas to Excel, LibreOffice and Google Sheets (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _review_row(review: Record) -> Record:
    return review | {"edits": json.dumps(review["edits"], ensure_ascii=False)}


def table_row(record: Record) -> Record:
    """A record shaped for the fixed table schema (see the module docstring of `exporters`)."""
    answer = record["golden_answer"]
    review = record["review"]
    return record | {
        "golden_answer": [answer] if isinstance(answer, str) else list(answer),
        "trajectory": [step | {"args": _json_or_none(step["args"])} for step in record["trajectory"]],
        "review": None if review is None else _review_row(review),
        "reviews": [_review_row(entry) for entry in record["reviews"]],
        "checks": json.dumps(record.get("checks") or {}, ensure_ascii=False),
    }


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


class ParquetExporter:
    name, extension, description = "parquet", ".parquet", "Apache Parquet, nested columns."

    def write(self, records: Iterable[Record], out: Path) -> list[Path]:
        with pq.ParquetWriter(out, TABLE_SCHEMA, compression="zstd") as writer:
            for batch in _batches(records, TABLE_BATCH):
                writer.write_table(pa.Table.from_pylist([table_row(r) for r in batch], schema=TABLE_SCHEMA))
        return [out]


def neutralised_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection): one that starts with
    = + - @ tab or carriage return gets a leading apostrophe, which spreadsheets show as text."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


class CsvExporter:
    name, extension, description = "csv", ".csv", "CSV, nested fields as JSON strings; formula-like cells neutralised."
    nested = ("source", "parents", "trajectory", "verification", "review", "reviews")

    def write(self, records: Iterable[Record], out: Path) -> list[Path]:
        with out.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=TABLE_SCHEMA.names)
            writer.writeheader()
            for record in records:
                flat = {key: _json_or_none(record[key]) for key in self.nested}
                answer = record["golden_answer"]
                flat["golden_answer"] = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
                writer.writerow({key: neutralised_cell(value) for key, value in (record | flat).items()})
        return [out]


class HuggingFaceExporter:
    name, extension, description = "hf_dataset", "", "A Hugging Face datasets folder (load_from_disk)."

    def write(self, records: Iterable[Record], out: Path) -> list[Path]:
        import datasets

        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "tasks.parquet"
            ParquetExporter().write(records, staged)
            features = datasets.Features.from_arrow_schema(TABLE_SCHEMA)
            dataset = datasets.Dataset.from_parquet(str(staged), features=features, cache_dir=str(Path(tmp) / "cache"))
            dataset.save_to_disk(str(out))
        return [out]


register_exporter(ParquetExporter())
register_exporter(CsvExporter())
register_exporter(JsonLinesExporter("openai_chat", "OpenAI chat fine-tuning JSONL with tool calls.", openai_chat))
register_exporter(JsonLinesExporter("sharegpt", "ShareGPT conversations with function calls.", sharegpt))
register_exporter(HuggingFaceExporter())
