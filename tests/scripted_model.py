"""A scripted chat model for tests: it answers with the AIMessages it was given, in order.

`bind_tools` returns the model itself, so `create_agent` runs its real loop over scripted tool
calls; `with_structured_output` parses the scripted message's JSON content into the schema (the
way JSON mode works), so `llm.invoke_structured` runs unchanged, retries included. Every prompt
received is kept in `received` for assertions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, Field


def usage(tokens: int) -> dict[str, int]:
    return {"input_tokens": tokens - tokens // 4, "output_tokens": tokens // 4, "total_tokens": tokens}


def reply(content: str = "", tokens: int = 10) -> AIMessage:
    """A final answer (or any plain text) costing `tokens`."""
    return AIMessage(content=content, usage_metadata=usage(tokens))


def call(name: str, args: dict[str, Any], call_id: str = "c1", tokens: int = 10) -> AIMessage:
    """A turn that asks for one tool call."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}],
                     usage_metadata=usage(tokens))


def structured(value: BaseModel | dict[str, Any], tokens: int = 20) -> AIMessage:
    """A structured answer, as the JSON text a server in JSON mode returns."""
    data = value.model_dump() if isinstance(value, BaseModel) else value
    return reply(json.dumps(data), tokens)


class ScriptedChatModel(GenericFakeChatModel):
    """Answers with the scripted messages in order; raises StopIteration when the script runs out."""

    received: list[list[BaseMessage]] = Field(default_factory=list)

    @classmethod
    def of(cls, messages: Iterable[AIMessage | str]) -> ScriptedChatModel:
        return cls(messages=iter(list(messages)))

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.received.append(list(messages))
        return super()._generate(messages, *args, **kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Runnable:
        def parse(raw: AIMessage) -> dict[str, Any]:
            try:
                return {"raw": raw, "parsed": schema.model_validate_json(raw.text), "parsing_error": None}
            except ValueError as error:
                return {"raw": raw, "parsed": None, "parsing_error": error}

        parsed = self | RunnableLambda(parse)
        return parsed if include_raw else parsed | RunnableLambda(lambda result: result["parsed"])
