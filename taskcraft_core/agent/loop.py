"""The solving agent: LangChain's `create_agent` loop over our tools, with a step limit, a timeout
per tool call, and the whole trajectory captured as ordered TrajectoryStep records.

Nothing the model does ends the run with an exception: an unknown tool, invalid arguments, a tool
that fails or hangs all become error observations the model can react to, and running out of
steps ends the run with `finished=False` and a failure message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from uuid import UUID

from langchain.agents import AgentState, create_agent
from langchain.agents.middleware import after_model
from langchain.agents.middleware.types import InputAgentState
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.errors import GraphRecursionError
from pydantic import BaseModel, Field

from taskcraft_core.models.chat import message_tokens
from taskcraft_core.schema import TrajectoryStep


class AgentResult(BaseModel):
    """What one agent run produced: its final answer and every step on the way."""

    answer: str
    steps: list[TrajectoryStep]
    tokens: int = 0
    calls: int = Field(0, description="Model calls the run made.")
    tool_steps: int = Field(0, description="Tool calls the model asked for (including failed ones).")
    finished: bool = True
    failure: str | None = None


class _Timings(BaseCallbackHandler):
    """Latency of each model call (in call order) and of each tool call (by tool_call_id)."""

    def __init__(self) -> None:
        self._started: dict[UUID, tuple[float, str | None]] = {}
        self._lock = threading.Lock()
        self.model_ms: list[float] = []
        self.tool_ms: dict[str, float] = {}

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *,
                            run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._started[run_id] = (time.perf_counter(), None)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            started, _ = self._started.pop(run_id, (time.perf_counter(), None))
            self.model_ms.append((time.perf_counter() - started) * 1000)

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._started[run_id] = (time.perf_counter(), kwargs.get("tool_call_id"))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_done(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_done(run_id)

    def _tool_done(self, run_id: UUID) -> None:
        with self._lock:
            started, call_id = self._started.pop(run_id, (time.perf_counter(), None))
            if call_id:
                self.tool_ms[call_id] = (time.perf_counter() - started) * 1000


def guard_tool(tool: BaseTool, timeout_s: float, executor: ThreadPoolExecutor) -> BaseTool:
    """The same tool, answering with an error observation when it fails or exceeds the timeout.
    (A timed-out call keeps its thread until it returns; the agent no longer waits for it.)"""

    def guarded(**kwargs: Any) -> str:
        future = executor.submit(tool.invoke, kwargs)
        try:
            return str(future.result(timeout=timeout_s))
        except FutureTimeout:
            return f"Error: {tool.name} did not answer within {timeout_s:g} s; try something else."
        except Exception as error:  # a failing tool is an observation for the model, not a crash
            return f"Error: {tool.name} failed: {type(error).__name__}: {error}"

    return StructuredTool.from_function(
        func=guarded, name=tool.name, description=tool.description, args_schema=tool.args_schema
    )


@after_model(can_jump_to=["model"])
def answer_malformed_tool_calls(state: AgentState, runtime: Any) -> dict[str, Any] | None:
    """A turn whose only tool calls had unparseable arguments would end the loop with no answer;
    instead each gets an error observation and the model is asked again."""
    last = state["messages"][-1]
    if not isinstance(last, AIMessage) or last.tool_calls or not last.invalid_tool_calls:
        return None
    errors = [
        ToolMessage(
            content=f"Error: the arguments of {c.get('name') or 'the tool call'} are not valid JSON "
                    f"({c.get('error') or 'unparseable'}); call the tool again with valid arguments.",
            name=c.get("name") or "unknown", tool_call_id=c.get("id") or f"invalid-{n}", status="error",
        )
        for n, c in enumerate(last.invalid_tool_calls)
    ]
    return {"messages": errors, "jump_to": "model"}


def recursion_limit(max_steps: int) -> int:
    """Graph steps for `max_steps` tool rounds plus the final answer: each round is a model node, the
    after-model check and a tool node; the answer is a model node and the check."""
    return 3 * max_steps + 2


def run_agent(
    question: str,
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    *,
    max_steps: int,
    tool_timeout_s: float,
    system_prompt: str | None = None,
    hop: int = 0,
) -> AgentResult:
    """Run the tool-using agent on one question; never raises for anything the model or a tool does.
    The caller brings the system prompt (the method's prompts live in `generate.prompts`)."""
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tool")
    timings = _Timings()
    agent = create_agent(model, [guard_tool(t, tool_timeout_s, executor) for t in tools],
                         system_prompt=system_prompt, middleware=[answer_malformed_tool_calls])
    config: RunnableConfig = {"recursion_limit": recursion_limit(max_steps), "callbacks": [timings]}
    messages: list[AnyMessage] = [HumanMessage(question)]
    failure = None
    try:
        for state in agent.stream(InputAgentState(messages=[*messages]), config=config, stream_mode="values"):
            messages = state["messages"]
    except GraphRecursionError:
        failure = f"step limit reached: no final answer after {max_steps} tool steps"
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return _result(messages, timings, failure, hop)


def _result(messages: Sequence[AnyMessage], timings: _Timings, failure: str | None, hop: int) -> AgentResult:
    steps = trajectory_steps(messages, timings, hop)
    replies = [m for m in messages if isinstance(m, AIMessage)]
    last = replies[-1] if replies else None
    answer = last.text.strip() if last is not None and not last.tool_calls and failure is None else ""
    if failure is None and not answer:
        failure = "the agent gave an empty answer"
    return AgentResult(
        answer=answer,
        steps=steps,
        tokens=sum(message_tokens(m) for m in replies),
        calls=len(replies),
        tool_steps=sum(len(m.tool_calls) + len(m.invalid_tool_calls) for m in replies),
        finished=failure is None,
        failure=failure,
    )


def trajectory_steps(messages: Sequence[AnyMessage], timings: _Timings, hop: int = 0) -> list[TrajectoryStep]:
    """Ordered steps: the question, each model turn (one step per tool call it asked for, so each
    carries its tool and arguments), and each tool observation in full."""
    steps: list[TrajectoryStep] = []
    model_turn = 0
    calls: dict[str, dict[str, Any]] = {}
    for message in messages:
        if isinstance(message, HumanMessage):
            steps.append(TrajectoryStep(position=0, type="human", content=message.text, hop=hop))
        elif isinstance(message, AIMessage):
            latency = timings.model_ms[model_turn] if model_turn < len(timings.model_ms) else 0.0
            model_turn += 1
            steps.extend(_model_turn_steps(message, latency, hop, calls))
        elif isinstance(message, ToolMessage):
            steps.append(TrajectoryStep(
                position=0, type="tool", tool=message.name, args=calls.get(message.tool_call_id),
                observation=message.text, latency_ms=timings.tool_ms.get(message.tool_call_id, 0.0), hop=hop,
            ))
    return [step.model_copy(update={"position": position}) for position, step in enumerate(steps)]


def _model_turn_steps(message: AIMessage, latency_ms: float, hop: int,
                      calls: dict[str, dict[str, Any]]) -> list[TrajectoryStep]:
    requested = [(c["name"], c["args"], c.get("id")) for c in message.tool_calls]
    # Arguments that were not valid JSON are kept raw, so the step shows what the model wrote.
    requested += [(c.get("name") or "unknown", {"raw_arguments": c.get("args")}, c.get("id"))
                  for c in message.invalid_tool_calls]
    for _name, args, call_id in requested:
        if call_id:
            calls[call_id] = args
    first = TrajectoryStep(position=0, type="ai", content=message.text, latency_ms=latency_ms,
                           tokens=message_tokens(message), hop=hop)
    if not requested:
        return [first]
    return [
        first.model_copy(update={"tool": name, "args": args}) if index == 0
        else TrajectoryStep(position=0, type="ai", tool=name, args=args, hop=hop)
        for index, (name, args, _call_id) in enumerate(requested)
    ]
