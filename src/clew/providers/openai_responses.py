"""The OpenAI Responses API (``responses.create``, streamed and not), for the OpenAI adapter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clew import attributes as a
from clew.providers.engine import Outcome, StreamState
from clew.providers.messages import (
    content_parts,
    get,
    text_part,
    texts_of,
    tool_call_part,
    tool_definitions,
)
from clew.providers.openai_stream import openai_request, openai_response_attributes
from clew.providers.usage import Usage, estimate_tokens, reported_cost
from clew.tracer.serialize import to_json

__all__ = ["ResponsesStreamState", "responses_content", "responses_output", "responses_request"]


def responses_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request attributes of a Responses API call: the parameters, the API type, the
    previous response it continues, the conversation it belongs to and the stored prompt it
    fills."""
    attrs = openai_request(body)
    attrs[a.OPENAI_API_TYPE] = "responses"
    previous = body.get("previous_response_id")
    if isinstance(previous, str) and previous:
        attrs[a.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID] = previous
    conversation = body.get("conversation")
    if isinstance(conversation, Mapping):
        conversation = conversation.get("id")
    if isinstance(conversation, str) and conversation:
        attrs[a.GEN_AI_CONVERSATION_ID] = conversation
    prompt = body.get("prompt")
    if isinstance(prompt, Mapping) and isinstance(prompt.get("id"), str):
        attrs[a.GEN_AI_PROMPT_NAME] = prompt["id"]
        if isinstance(prompt.get("version"), str):
            attrs[a.GEN_AI_PROMPT_VERSION] = prompt["version"]
    return attrs


def responses_content(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    attrs = tool_definitions(body, max_bytes)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        attrs[a.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json([text_part(instructions)], max_bytes)
    items = body.get("input")
    if isinstance(items, str):
        messages = [{"role": "user", "parts": [text_part(items)]}]
    else:
        messages = [_responses_item(item) for item in items or ()]
    attrs[a.GEN_AI_INPUT_MESSAGES] = to_json(messages, max_bytes)
    return attrs


def _responses_item(item: Any) -> dict[str, Any]:
    kind = get(item, "type", "message")
    if kind in ("function_call", "custom_tool_call"):
        return {"role": "assistant", "parts": [_tool_call(item)]}
    if kind in ("function_call_output", "custom_tool_call_output"):
        part = {
            "type": "tool_call_response",
            "id": get(item, "call_id"),
            "response": get(item, "output"),
        }
        return {"role": "tool", "parts": [part]}
    if kind == "reasoning":
        return {"role": "assistant", "parts": [_reasoning(item)]}
    return {"role": get(item, "role", "user"), "parts": content_parts(get(item, "content"))}


def _tool_call(item: Any) -> dict[str, Any]:
    """A function call's part, or a custom tool call's (its input is free text)."""
    if get(item, "type") == "custom_tool_call":
        return tool_call_part(
            get(item, "call_id"), get(item, "name"), get(item, "input"), json_text=False
        )
    return tool_call_part(get(item, "call_id"), get(item, "name"), get(item, "arguments"))


def _reasoning(item: Any) -> dict[str, Any]:
    """A reasoning item's part: the text of its summary (empty when it only carries encrypted
    content)."""
    summary = "\n\n".join(str(get(s, "text", "")) for s in get(item, "summary", ()))
    return {"type": "reasoning", "content": summary}


def responses_output(response: Any) -> Outcome:
    """Read a Responses API response (an SDK object or its JSON)."""
    status = get(response, "status")
    if status == "incomplete":
        reason = get(get(response, "incomplete_details"), "reason", "incomplete")
    elif status == "failed":
        reason = "error"
    else:
        reason = "stop"
    output = get(response, "output", ())
    if any(get(item, "type") in ("function_call", "custom_tool_call") for item in output):
        reason = "tool_calls" if status == "completed" else reason
    messages = None
    if output:
        parts: list[dict[str, Any]] = []
        for item in output:
            kind = get(item, "type")
            if kind == "message":
                parts.extend(content_parts(get(item, "content")))
            elif kind in ("function_call", "custom_tool_call"):
                parts.append(_tool_call(item))
            elif kind == "reasoning" and get(item, "summary"):
                parts.append(_reasoning(item))
        messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]
    usage = get(response, "usage")
    response_id = get(response, "id")
    return Outcome(
        Usage.from_openai_responses(usage),
        get(response, "model"),
        reported_cost(usage),
        response_id if isinstance(response_id, str) else None,
        [str(reason)] if status else [],
        messages,
        attributes=openai_response_attributes(response),
    )


class ResponsesStreamState(StreamState):
    """A Responses API stream: the final ``response.completed`` event carries everything."""

    __slots__ = ("body", "final", "text")

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.final: Any = None
        self.text: list[str] = []

    def record(self, chunk: Any) -> None:
        kind = getattr(chunk, "type", None)
        if kind == "response.output_text.delta":
            self.text.append(chunk.delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed") or (
            kind == "response.created" and self.final is None
        ):
            self.final = chunk.response

    def outcome(self) -> Outcome:
        if self.final is not None and get(self.final, "usage") is not None:
            return responses_output(self.final)
        response_id = get(self.final, "id")
        body = self.body
        texts = [*texts_of(body.get("input")), *texts_of(body.get("instructions"))]
        usage = Usage(
            input_uncached=estimate_tokens(texts),
            output=estimate_tokens(self.text) if self.text else 0,
            estimated=True,
        )
        messages = None
        if self.text:  # what the stream said before it ended
            parts = [text_part("".join(self.text))]
            messages = [{"role": "assistant", "parts": parts, "finish_reason": None}]
        return Outcome(
            usage,
            get(self.final, "model"),
            response_id=response_id if isinstance(response_id, str) else None,
            messages=messages,
            attributes=openai_response_attributes(self.final) if self.final else None,
        )
