"""What a model answered, in the form the response and the cache need: the text, the tool
calls, the finish reason in OpenAI's words, and the provider's reading (:class:`Outcome`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from clew.gateway.schemas import ToolCall
from clew.providers.engine import Outcome
from clew.providers.usage import Usage
from clew.tracer.serialize import to_json

__all__ = ["Answer", "normalized_finish"]

_FINISH = {
    # OpenAI and the OpenAI-compatible providers
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    # Anthropic, Bedrock
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "length",
    # Cohere
    "complete": "stop",
    "tool_call": "tool_calls",
    "error": "error",
    "timeout": "error",
    "error_toxic": "content_filter",
    "error_limit": "length",
    "user_cancel": "stop",
    # Gemini
    "finish_reason_unspecified": "stop",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "image_safety": "content_filter",
    "malformed_function_call": "error",
    "other": "stop",
    "language": "content_filter",
}


def normalized_finish(native: str | None, has_calls: bool) -> str | None:
    """OpenAI's finish reason (stop, length, tool_calls, content_filter, error) for a
    provider's own one."""
    if native is None:
        return "tool_calls" if has_calls else None
    found = _FINISH.get(native.lower(), native.lower())
    return "tool_calls" if has_calls and found == "stop" else found


@dataclass(slots=True)
class Answer:
    """What a model answered, in the form the cache keeps."""

    provider: str
    request_model: str
    outcome: Outcome
    fallback_index: int = 0
    _rendered: dict[int, tuple[str | None, str]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _parts: tuple[str, list[ToolCall], str] | None = field(default=None, compare=False, repr=False)

    def parts(self) -> tuple[str, list[ToolCall], str]:
        """The text, the tool calls and the response's ``content`` (made once)."""
        parts = self._parts
        if parts is None:
            text, calls = self.text_and_calls()
            parts = self._parts = (text, calls, self.content(text, calls))
        return parts

    def rendered(self, max_bytes: int) -> tuple[str | None, str]:
        """The JSON of the output messages (None without any) and of the content, as
        :func:`to_json` writes them at ``max_bytes`` (made once per limit: a cached answer is
        served again and again)."""
        found = self._rendered.get(max_bytes)
        if found is None:
            outcome = self.outcome
            messages = (
                to_json(outcome.messages, max_bytes, plain=outcome.plain)
                if outcome.messages
                else None
            )
            found = (messages, to_json(self.parts()[2], max_bytes))
            if len(self._rendered) < 4:
                self._rendered[max_bytes] = found
        return found

    @property
    def model(self) -> str:
        """The model that answered (as the provider named it)."""
        return self.outcome.model or self.request_model

    def text_and_calls(self) -> tuple[str, list[ToolCall]]:
        """The text of the first choice and its tool calls."""
        messages = self.outcome.messages or []
        parts = messages[0].get("parts", []) if messages else []
        text: list[str] = []
        calls: list[ToolCall] = []
        for part in parts:
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("content"), str):
                text.append(part["content"])
            elif kind == "tool_call":
                arguments = part.get("arguments")
                if not isinstance(arguments, str):
                    arguments = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
                call_id = part.get("id")
                calls.append(
                    ToolCall(
                        id=str(call_id) if call_id is not None else None,
                        function={"name": str(part.get("name") or ""), "arguments": arguments},
                    )
                )
        return "".join(text), calls

    def content(self, text: str | None = None, calls: list[ToolCall] | None = None) -> str:
        """The response's ``content``: the text, or the JSON text of the tool calls (given
        ``text`` and ``calls`` when the caller has them already)."""
        if text is None or calls is None:
            text, calls = self.text_and_calls()
        if calls:
            return json.dumps([c.model_dump() for c in calls], ensure_ascii=False)
        return text

    def to_bytes(self) -> bytes:
        """The cache's form."""
        o = self.outcome
        u = o.usage
        usage = (
            None
            if u is None
            else [u.input_uncached, u.cache_read, u.cache_write, u.output, u.reasoning, u.estimated]
        )
        return json.dumps(
            {
                "v": 1,
                "provider": self.provider,
                "request_model": self.request_model,
                "model": o.model,
                "id": o.response_id,
                "finish": o.finish_reasons,
                "messages": o.messages,
                "usage": usage,
                "reported_cost": o.reported_cost,
                "fallback": self.fallback_index,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Answer | None:
        """An answer from the cache's form (None for an entry of another version)."""
        value = json.loads(data)
        if not isinstance(value, dict) or value.get("v") != 1:
            return None
        raw = value.get("usage")
        usage = None
        if raw is not None:
            fresh, read, write, output, reasoning, estimated = raw
            usage = Usage(fresh, read, write, output, reasoning, bool(estimated))
        outcome = Outcome(
            usage,
            value.get("model"),
            value.get("reported_cost"),
            value.get("id"),
            list(value.get("finish") or ()),
            value.get("messages"),
        )
        return cls(value["provider"], value["request_model"], outcome, value.get("fallback", 0))
