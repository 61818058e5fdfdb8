"""The deterministic content both providers' routes share.

Reply text (the start of the prompt, then filler), token counting (a token is a
whitespace-separated word, so usage agrees between stream and non-stream), stream pieces,
the ``max_tokens`` and stop-sequence cuts, which tools the fake model calls, and example
values for a JSON schema (tool arguments, structured output). Pure functions, no I/O.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Tool",
    "ToolCall",
    "argument_pieces",
    "count_tokens",
    "count_words",
    "cut_at_stop",
    "cut_to_limit",
    "declared_tools",
    "example_value",
    "formatted_reply",
    "make_tool_calls",
    "pick_tools",
    "plain_text",
    "reasoning_tokens",
    "reply_text",
    "text_pieces",
]

_REASONING_TOKENS = 16
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5)")
_FILLER_TEXT = (
    "this is a deterministic reply from the clew fake llm server so that tests "
    "can rely on stable text and stable token counts every time"
)
_FILLER = _FILLER_TEXT.split()
_PIECES = re.compile(r"\s*\S+")
_ARG_PIECES = re.compile(r"\w+|\W+")
_GENERIC_NAME_PARTS = frozenset({"get", "set", "list", "create", "update", "fetch", "tool"})


# -- text and tokens ------------------------------------------------------------------------


def count_words(value: Any) -> int:
    """Count the words (= tokens) of the text in a message list, message or content."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(item) for item in value)
    if not isinstance(value, Mapping):
        return 0
    total = sum(
        count_words(value[key])
        for key in ("text", "content", "arguments", "output")
        if key in value
    )
    if value.get("type") == "tool_use":
        total += len(json.dumps(value.get("input")).split())
    for call in value.get("tool_calls") or ():
        if isinstance(call, Mapping):
            total += count_words(call.get("function"))
    return total


def plain_text(value: Any) -> str:
    """The plain text of a message content (str or list of parts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(plain_text(item) for item in value)
    if isinstance(value, Mapping):
        inner = value.get("text", value.get("content"))
        return "" if inner is None else plain_text(inner)
    return ""


def reply_text(prompt: str, words: int, variant: int = 0) -> str:
    """The reply: ``Echo:``, the prompt's first six words, then filler; ``words`` long."""
    head = ["Echo:" if variant == 0 else f"Echo#{variant + 1}:", *prompt.split()[:6]]
    filler = itertools.islice(itertools.cycle(_FILLER), max(0, words - len(head)))
    return " ".join([*head, *filler][:words])


def text_pieces(text: str) -> list[str]:
    """``text`` split into stream deltas, one token each (with its leading space)."""
    return _PIECES.findall(text)


def cut_to_limit(text: str, limit: Any) -> tuple[str, bool]:
    """Cut ``text`` to ``limit`` tokens; return it and whether it was cut."""
    if not isinstance(limit, int) or isinstance(limit, bool):
        return text, False
    pieces = text_pieces(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[: max(limit, 0)]), True


def cut_at_stop(text: str, stop: Any) -> tuple[str, str | None]:
    """Cut ``text`` before the first stop sequence it contains."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or () if isinstance(s, str)]
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return text, None
    index, sequence = min(hits)
    return text[:index].rstrip(), sequence


def count_tokens(text: str) -> int:
    """The tokens of a reply text: its whitespace-separated words."""
    return len(text.split())


def reasoning_tokens(model: str) -> int:
    """The reasoning tokens a model reports: 16 for ``o1``/``o3``/``o4``/``gpt-5``..., else 0."""
    return _REASONING_TOKENS if _REASONING_MODELS.match(model) else 0


# -- tools ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the request declares: its name and its parameters' JSON schema."""

    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call of a tool by the fake model, with its arguments as JSON text."""

    id: str
    name: str
    arguments: str

    @property
    def tokens(self) -> int:
        """The output tokens the call counts for."""
        return max(1, len(self.arguments) // 4)


def declared_tools(body: Mapping[str, Any]) -> list[Tool]:
    """The callable tools of a request (``tools`` and legacy ``functions``, both providers)."""
    found: list[Tool] = []
    for spec in [*(body.get("tools") or ()), *(body.get("functions") or ())]:
        if not isinstance(spec, Mapping):
            continue
        nested = spec.get("function")
        function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else spec
        kind = spec.get("type", "function")
        if kind not in ("function", "custom") or not isinstance(function.get("name"), str):
            continue  # hosted / server tools (web search, code interpreter ...) are not called
        schema = function.get("parameters") or function.get("input_schema") or {}
        found.append(Tool(function["name"], schema if isinstance(schema, Mapping) else {}))
    return found


def _mentions(prompt: str, name: str) -> bool:
    lowered = name.lower()
    if lowered in prompt:
        return True
    parts = [
        p for p in re.split(r"[_\-\s.]+", lowered) if len(p) >= 4 and p not in _GENERIC_NAME_PARTS
    ]
    return any(re.search(rf"\b{re.escape(part)}", prompt) for part in parts)


def pick_tools(
    tools: list[Tool], choice: Any, prompt: str, last_is_user: bool, parallel: bool
) -> list[Tool]:
    """Decide which tools the fake model calls.

    A tool is called when ``choice`` (``tool_choice``) forces one, or when the last message
    is the user's and names it (or a word of its name, or says "tool").
    """
    if not tools:
        return []
    required = False
    if isinstance(choice, str):
        if choice == "none":
            return []
        required = choice in ("required", "any")
    elif isinstance(choice, Mapping):
        kind = choice.get("type")
        function = choice.get("function")
        name = choice.get("name") or (
            function.get("name") if isinstance(function, Mapping) else None
        )
        if kind == "none":
            return []
        if isinstance(name, str):
            return [next((t for t in tools if t.name == name), Tool(name, {}))]
        required = kind in ("any", "required")
    if not (last_is_user or required):
        return []
    lowered = prompt.lower()
    picked = [t for t in tools if _mentions(lowered, t.name)]
    if not picked and (required or re.search(r"\btools?\b", lowered)):
        picked = [tools[0]]
    return picked if parallel else picked[:1]


def make_tool_calls(picked: list[Tool], prefix: str, number: int, choice: int) -> list[ToolCall]:
    """Calls of the picked tools, with ids from the request number and example arguments."""
    return [
        ToolCall(
            f"{prefix}fake{number:08d}_{choice}_{n}",
            tool.name,
            json.dumps(
                example_value(tool.schema, tool.schema, tool.name) or {}, separators=(",", ":")
            ),
        )
        for n, tool in enumerate(picked)
    ]


def argument_pieces(arguments: str) -> list[str]:
    """Tool-call arguments split into stream deltas."""
    return _ARG_PIECES.findall(arguments) or [arguments]


# -- JSON schema examples --------------------------------------------------------------------


def example_value(schema: Any, root: Mapping[str, Any], hint: str = "value", depth: int = 0) -> Any:
    """A deterministic instance of a JSON schema (enough for tool arguments and json_schema)."""
    if not isinstance(schema, Mapping) or depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return example_value(target, root, hint, depth + 1)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [
            o for o in schema.get(key) or () if isinstance(o, Mapping) and o.get("type") != "null"
        ]
        if options:
            return example_value(options[0], root, hint, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: example_value(sub, root, name, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [example_value(schema.get("items"), root, hint, depth + 1)]
    return {
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "null": None,
    }.get(str(kind), _example_string(schema, hint))


def formatted_reply(response_format: Any, text: str) -> str:
    """The reply as JSON when the request asks for json_object / json_schema output."""
    if not isinstance(response_format, Mapping):
        return text
    kind = response_format.get("type")
    if kind == "json_object":
        return json.dumps({"reply": text})
    if kind == "json_schema":
        spec = response_format.get("json_schema") or response_format
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return json.dumps(example_value(schema, schema) if isinstance(schema, Mapping) else {})
    return text


def _example_string(schema: Mapping[str, Any], hint: str) -> str:
    formats = {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01", "email": "a@example.com"}
    return formats.get(str(schema.get("format")), f"example {hint}")
