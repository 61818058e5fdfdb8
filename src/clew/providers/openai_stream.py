"""The OpenAI chat (and legacy completions) stream: what a stream said, chunk by chunk; and the
readers every OpenAI API shares (the OpenAI refinement's request and response attributes).

:class:`ChatStreamState` reads the SDK's chunk objects (the instrumentation) and the chunks'
JSON (the completion gateway) the same way; a test compares the two on every recorded stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clew import attributes as a
from clew.providers.engine import Outcome, StreamState
from clew.providers.messages import get, param_attributes, text_part, texts_of, tool_call_part
from clew.providers.usage import Usage, _extra, estimate_tokens, reported_cost

__all__ = [
    "PLAIN_REASONS",
    "ChatStreamState",
    "openai_request",
    "openai_response_attributes",
    "text_or_none",
]


def text_or_none(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None (ids)."""
    return value if isinstance(value, str) and value else None


PLAIN_REASONS = (str, type(None))


def openai_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request attributes every OpenAI API shares: the parameters, and the OpenAI
    refinement's service tier."""
    attrs = param_attributes(body)
    tier = body.get("service_tier")
    if isinstance(tier, str):
        attrs[a.OPENAI_REQUEST_SERVICE_TIER] = tier
    return attrs


def openai_response_attributes(response: Any) -> dict[str, Any] | None:
    """The OpenAI refinement's response attributes: service tier and system fingerprint."""
    attrs: dict[str, Any] = {}
    tier = _extra(response, "service_tier")
    if isinstance(tier, str) and tier:
        attrs[a.OPENAI_RESPONSE_SERVICE_TIER] = tier
    fingerprint = _extra(response, "system_fingerprint")
    if isinstance(fingerprint, str) and fingerprint:
        attrs[a.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    return attrs or None


class _Choice:
    __slots__ = ("finish_reason", "reasoning", "text", "tools")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []  # Mistral's streamed thinking parts
        # index → [id, name, [argument pieces], custom]: a custom tool's input is free text
        self.tools: dict[int, list[Any]] = {}
        self.finish_reason: str | None = None

    def add(self, content: Any) -> None:
        """A delta's content: text, or (Mistral) a list of text and thinking parts."""
        if type(content) is str:
            self.text.append(content)
            return
        for part in content if isinstance(content, list | tuple) else ():
            kind = get(part, "type")
            if kind == "text":
                self.text.append(str(get(part, "text", "")))
            elif kind == "thinking":
                self.reasoning.extend(texts_of(get(part, "thinking")))


def _groq_usage(chunk: Any) -> Any:
    """Groq puts a stream's usage under ``x_groq`` in its last chunk."""
    x_groq = chunk.get("x_groq") if type(chunk) is dict else _extra(chunk, "x_groq")
    return get(x_groq, "usage")


def _tool_deltas(slot: _Choice, tool_calls: Any) -> None:
    for tool_call in tool_calls:
        entry = slot.tools.get(tool_call.index)
        if entry is None:
            entry = slot.tools[tool_call.index] = [None, None, [], False]
        if tool_call.id:
            entry[0] = tool_call.id
        function = tool_call.function
        if function is not None:
            if function.name:
                entry[1] = function.name
            if function.arguments:
                entry[2].append(function.arguments)
        else:
            _custom_delta(entry, _extra(tool_call, "custom"))


def _tool_deltas_json(slot: _Choice, tool_calls: Any) -> None:
    for tool_call in tool_calls:
        index = tool_call.get("index") or 0
        entry = slot.tools.get(index)
        if entry is None:
            entry = slot.tools[index] = [None, None, [], False]
        if tool_call.get("id"):
            entry[0] = tool_call["id"]
        function = tool_call.get("function")
        if function is not None:
            if function.get("name"):
                entry[1] = function["name"]
            if function.get("arguments"):
                entry[2].append(function["arguments"])
        else:
            _custom_delta(entry, tool_call.get("custom"))


def _custom_delta(entry: list[Any], custom: Any) -> None:
    """A custom tool call's delta: its name, and a piece of its free-text input."""
    if custom is None:
        return
    entry[3] = True
    if get(custom, "name"):
        entry[1] = get(custom, "name")
    if get(custom, "input"):
        entry[2].append(get(custom, "input"))


class ChatStreamState(StreamState):
    """A chat completion stream: text and tool-call deltas per choice, the final usage."""

    __slots__ = ("attributes", "body", "choices", "model", "response_id", "single", "usage")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.response_id: str | None = None
        self.model: str | None = None
        self.attributes: dict[str, Any] | None = None  # the first chunk's tier and fingerprint
        self.usage: Any = None
        self.choices: dict[int, _Choice] = {}
        n = body.get("n")
        # One choice per chunk, index 0: the common stream, read on a short path.
        self.single = (n is None or n == 1) and "messages" in body

    def record(self, chunk: Any) -> None:
        if type(chunk) is dict:  # the JSON of a chunk, as the completion gateway reads it
            self._record_json(chunk)
            return
        # This runs for every chunk, between the SDK's parsing of one and the next, so it
        # reads as few fields as it can, by plain attribute access (getattr(obj, name, None)
        # costs a builtin call more); any other shape takes the general path below.
        if self.single and self.response_id:
            try:
                usage = chunk.usage
                choices = chunk.choices
                if choices:
                    choice = choices[0]
                    index = choice.index
                    finish_reason = choice.finish_reason
                    delta = choice.delta
                    text = delta.content
                    tool_calls = delta.tool_calls
            except AttributeError:
                self.single = False
            else:
                if usage is not None:
                    self.usage = usage  # the final chunk's usage, even after the finish reason
                if not choices:
                    return
                if not index and len(choices) == 1:
                    slot = self.choices.get(0)
                    if slot is None:
                        slot = self.choices[0] = _Choice()
                    if text:
                        if type(text) is str:  # the common chunk: a piece of text
                            slot.text.append(text)
                        else:
                            slot.add(text)
                    if tool_calls:
                        _tool_deltas(slot, tool_calls)
                    if finish_reason:
                        slot.finish_reason = finish_reason
                        if usage is None:
                            self.usage = _groq_usage(chunk) or self.usage
                    return
                self.single = False
                self._choices(choices)
                return
        if not self.response_id:  # Azure's first chunk (content filter results) has id ""
            self.response_id = getattr(chunk, "id", None) or None
            self.model = getattr(chunk, "model", None) or None
            self.attributes = openai_response_attributes(chunk)
        usage = getattr(chunk, "usage", None) or _groq_usage(chunk)
        if usage is not None:
            self.usage = usage
        self._choices(getattr(chunk, "choices", None) or ())

    def _record_json(self, chunk: dict[str, Any]) -> None:
        """:meth:`record` for a chunk's JSON (the same reading as for an SDK chunk)."""
        if not self.response_id:
            self.response_id = chunk.get("id") or None
            self.model = chunk.get("model") or None
            self.attributes = openai_response_attributes(chunk)
        usage = chunk.get("usage")
        if usage is None and "x_groq" in chunk:
            usage = _groq_usage(chunk)
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            index = choice.get("index") or 0
            slot = self.choices.get(index)
            if slot is None:
                slot = self.choices[index] = _Choice()
            delta = choice.get("delta")
            if delta is not None:
                text = delta.get("content")
                tool_calls = delta.get("tool_calls")
                if tool_calls:
                    _tool_deltas_json(slot, tool_calls)
            else:
                text = choice.get("text")
            if text:
                slot.add(text)
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                slot.finish_reason = finish_reason

    def _choices(self, choices: Any) -> None:
        for choice in choices:
            index = getattr(choice, "index", 0) or 0
            slot = self.choices.get(index)
            if slot is None:
                slot = self.choices[index] = _Choice()
            delta = getattr(choice, "delta", None)
            # A chat chunk has a delta, a legacy completion chunk a text (asking a model for
            # a field it lacks costs microseconds).
            if delta is not None:
                text = getattr(delta, "content", None)
                tool_calls = getattr(delta, "tool_calls", None)
                if tool_calls:
                    _tool_deltas(slot, tool_calls)
            else:
                text = getattr(choice, "text", None)
            if text:
                slot.add(text)
            finish_reason = getattr(choice, "finish_reason", None)
            if finish_reason:
                slot.finish_reason = finish_reason

    def outcome(self) -> Outcome:
        ordered = [self.choices[i] for i in sorted(self.choices)]
        reasons = [str(c.finish_reason) for c in ordered if c.finish_reason]
        messages: list[dict[str, Any]] | None = None
        plain = False
        if ordered:
            messages = []
            for choice in ordered:
                parts = (
                    [{"type": "reasoning", "content": "".join(choice.reasoning)}]
                    if choice.reasoning
                    else []
                )
                if choice.text:
                    parts.append(text_part("".join(choice.text)))
                for _, (call_id, name, pieces, custom) in sorted(choice.tools.items()):
                    parts.append(
                        tool_call_part(call_id, name, "".join(pieces), json_text=not custom)
                    )
                messages.append(
                    {"role": "assistant", "parts": parts, "finish_reason": choice.finish_reason}
                )
            # Text parts only (str values under clew's keys) need no look for objects or
            # secret-named keys; tool-call arguments are the model's JSON and do.
            plain = not any(
                choice.tools or type(choice.finish_reason) not in PLAIN_REASONS
                for choice in ordered
            )
        usage = Usage.from_openai(self.usage)
        if usage is None:
            usage = self._estimate(ordered)
        return Outcome(
            usage,
            self.model,
            reported_cost(self.usage),
            text_or_none(self.response_id),
            reasons,
            messages,
            plain,
            self.attributes,
        )

    def _estimate(self, ordered: list[_Choice]) -> Usage:
        messages = self.body.get("messages")
        prompt = self.body.get("prompt")
        source = messages if messages is not None else prompt
        count = len(messages) if isinstance(messages, list) else 0
        input_tokens = estimate_tokens(texts_of(source), count)
        output = sum(
            estimate_tokens(
                [
                    *c.text,
                    *("".join(t[2]) for t in c.tools.values()),
                    *(t[1] or "" for t in c.tools.values()),
                ]
            )
            for c in ordered
            if c.text or c.tools
        )
        return Usage(input_uncached=input_tokens, output=output, estimated=True)
