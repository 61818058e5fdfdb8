"""Messages and tools in the GenAI semantic-convention shape, and small readers shared by
providers.

The convention records messages as ``[{"role": ..., "parts": [...]}]`` with typed parts:
``text`` (``content``), ``tool_call`` (``id``, ``name``, ``arguments``),
``tool_call_response`` (``id``, ``response``), ``server_tool_call`` /
``server_tool_call_response`` for tools the provider runs itself (web search ...),
``reasoning``, ``uri`` / ``blob`` for media. Output messages add ``finish_reason``. Tool
definitions are flat: ``{"type", "name", "description", "parameters"}``. Values are
JSON-encoded once, by the caller.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from clew import attributes as a
from clew.tracer.serialize import to_json

__all__ = [
    "function_definition",
    "get",
    "param_attributes",
    "server_tool_call_part",
    "server_tool_response_part",
    "text_part",
    "tool_call_part",
    "tool_definition",
    "tool_definitions",
]

Part = dict[str, Any]
Message = dict[str, Any]


_is_mapping: dict[type, bool] = {dict: True}
"""Whether a type is a Mapping, by type: the ABC check costs more than the read it guards."""


def get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; ``default`` when absent or None."""
    if obj is None:
        return default
    kind = type(obj)
    mapping = _is_mapping.get(kind)
    if mapping is None:
        mapping = isinstance(obj, Mapping)
        if len(_is_mapping) < 1024:
            _is_mapping[kind] = mapping
    value = obj.get(name) if mapping else getattr(obj, name, None)
    return default if value is None else value


def tool_definitions(body: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """The ``gen_ai.tool.definitions`` attribute of a request's ``tools`` (or ``functions``)."""
    tools = body.get("tools") or body.get("functions")
    if tools and isinstance(tools, list | tuple):
        definitions = [tool_definition(tool) for tool in tools]
        return {a.GEN_AI_TOOL_DEFINITIONS: to_json(definitions, max_bytes)}
    return {}


def tool_definition(tool: Any) -> Part:
    """One tool in the convention's flat shape, from any provider's.

    A function (OpenAI chat's ``{"type": "function", "function": {...}}``, the Responses API's
    flat one, a legacy ``functions`` entry, an Anthropic tool with an ``input_schema``) becomes
    ``{"type": "function", "name", "description", "parameters"}``; a custom tool keeps its
    type with its name lifted out; a built-in tool (``web_search_preview``, Anthropic's
    ``web_search_20250305`` ...) keeps its settings, named by its type when it has no name.

    Example:
        >>> tool_definition({"type": "function", "function": {"name": "f", "parameters": {}}})
        {'type': 'function', 'name': 'f', 'parameters': {}}
        >>> tool_definition({"type": "web_search_preview"})
        {'type': 'web_search_preview', 'name': 'web_search_preview'}
    """
    kind = get(tool, "type")
    function = get(tool, "function")
    if function is not None:
        return function_definition(function, get(function, "parameters"))
    if get(tool, "input_schema") is not None:  # Anthropic's client tools ("custom" or untyped)
        return function_definition(tool, get(tool, "input_schema"))
    if kind is None or kind == "function":
        return function_definition(tool, get(tool, "parameters"))
    if kind == "custom":
        source = get(tool, "custom", tool)
        custom = function_definition(source, None)
        custom["type"] = "custom"
        if get(source, "format") is not None:
            custom["format"] = get(source, "format")
        return custom
    settings = dict(tool) if isinstance(tool, Mapping) else {}
    return {**settings, "type": str(kind), "name": str(get(tool, "name", kind))}


def function_definition(source: Any, parameters: Any) -> Part:
    """A function tool in the convention's flat shape: ``source``'s name and description, and
    ``parameters`` (its JSON schema, wherever the provider keeps it)."""
    out: Part = {"type": "function", "name": get(source, "name")}
    description = get(source, "description")
    if description is not None:
        out["description"] = description
    if parameters is not None:
        out["parameters"] = parameters
    return out


def text_part(text: Any) -> Part:
    """A text part."""
    return {"type": "text", "content": text}


def tool_call_part(call_id: Any, name: Any, arguments: Any, *, json_text: bool = True) -> Part:
    """A tool-call part; JSON arguments are decoded so they read as objects (unless
    ``json_text`` is False: a custom tool's input is free text)."""
    if json_text:
        arguments = _decoded(arguments)
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def _decoded(arguments: Any) -> Any:
    """JSON text decoded; partial or invalid JSON, or no text, kept as the model produced it."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            return json.loads(arguments)
    return arguments


def server_tool_call_part(call_id: Any, name: Any, arguments: Any) -> Part:
    """A call of a tool the provider runs itself (Anthropic's ``server_tool_use``: web search,
    code execution ...), typed by the tool's name as the convention's examples do."""
    call = {"type": name, "arguments": _decoded(arguments)}
    return {"type": "server_tool_call", "id": call_id, "name": name, "server_tool_call": call}


def server_tool_response_part(call_id: Any, kind: Any, content: Any) -> Part:
    """The result of a tool the provider ran (Anthropic's ``web_search_tool_result`` ...),
    typed by the provider's own word for it."""
    response = {"type": kind, "content": content}
    return {
        "type": "server_tool_call_response",
        "id": call_id,
        "server_tool_call_response": response,
    }


def media_part(part: Mapping[str, Any]) -> Part:
    """A non-text content part (image, audio, file), without inline data."""
    kind = str(part.get("type", "unknown"))
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if isinstance(url, str) and not url.startswith("data:"):
        return {"type": "uri", "modality": "image", "uri": url}
    modality = "image" if "image" in kind else "audio" if "audio" in kind else kind
    return {"type": "blob", "modality": modality, "content": "[inline data omitted]"}


def content_parts(content: Any) -> list[Part]:
    """Parts from a string or a list of typed content parts (OpenAI / Anthropic style)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[Part] = []
    if isinstance(content, Iterable) and not isinstance(content, bytes | Mapping):
        for item in content:
            kind = get(item, "type")
            if kind in ("text", "input_text", "output_text"):
                parts.append(text_part(get(item, "text", "")))
            elif kind in ("thinking", "reasoning"):
                thinking = get(item, "thinking", "")
                if not isinstance(thinking, str):  # Mistral: a list of text parts
                    thinking = "".join(texts_of(thinking))
                parts.append({"type": "reasoning", "content": thinking})
            elif isinstance(item, Mapping):
                parts.append(media_part(item))
            elif isinstance(item, str):
                parts.append(text_part(item))
    return parts


def texts_of(value: Any) -> Iterable[str]:
    """Every string inside ``value`` (for estimating tokens)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in ("role", "type", "image_url", "cache_control"):
                yield from texts_of(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from texts_of(item)


# Each parameter's attribute, and its type in the convention: True for a double.
_PARAMS = {
    "temperature": (a.GEN_AI_REQUEST_TEMPERATURE, True),
    "top_p": (a.GEN_AI_REQUEST_TOP_P, True),
    "top_k": (a.GEN_AI_REQUEST_TOP_K, False),
    "frequency_penalty": (a.GEN_AI_REQUEST_FREQUENCY_PENALTY, True),
    "presence_penalty": (a.GEN_AI_REQUEST_PRESENCE_PENALTY, True),
    "seed": (a.GEN_AI_REQUEST_SEED, False),
    "max_tokens": (a.GEN_AI_REQUEST_MAX_TOKENS, False),
    "max_completion_tokens": (a.GEN_AI_REQUEST_MAX_TOKENS, False),
    "max_output_tokens": (a.GEN_AI_REQUEST_MAX_TOKENS, False),
}
_PARAM_KEYS = frozenset(_PARAMS)
_OUTPUT_TYPES = {"json_object": "json", "json_schema": "json", "json": "json", "text": "text"}


def param_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``gen_ai.request.*`` parameters found in a request body, typed as the convention
    says (``temperature`` a double even when written ``0``)."""
    attrs: dict[str, Any] = {}
    model = body.get("model")
    if isinstance(model, str):
        attrs[a.GEN_AI_REQUEST_MODEL] = model
    for key in _PARAM_KEYS.intersection(body):
        value = body[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            name, double = _PARAMS[key]
            if double:
                attrs[name] = float(value)
            elif isinstance(value, int) or value.is_integer():
                attrs[name] = int(value)
    stop = body.get("stop") or body.get("stop_sequences")
    if isinstance(stop, str):
        attrs[a.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, list | tuple) and stop:
        attrs[a.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        attrs[a.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if body.get("stream"):
        attrs[a.GEN_AI_REQUEST_STREAM] = True
    output_type = _output_type(body)
    if output_type is not None:
        attrs[a.GEN_AI_OUTPUT_TYPE] = output_type
    level = _reasoning_level(body)
    if level is not None:
        attrs[a.GEN_AI_REQUEST_REASONING_LEVEL] = level
    return attrs


def _output_type(body: Mapping[str, Any]) -> str | None:
    """``json`` or ``text`` for an output format the request names: OpenAI chat's
    ``response_format``, the Responses API's ``text.format``, Anthropic's ``output_format`` or
    ``output_config.format``."""
    fmt = body.get("response_format")
    if fmt is None:
        fmt = _nested(body, "text", "format")
    if fmt is None:
        fmt = body.get("output_format")
    if fmt is None:
        fmt = _nested(body, "output_config", "format")
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    return _OUTPUT_TYPES.get(kind) if isinstance(kind, str) else None


def _reasoning_level(body: Mapping[str, Any]) -> str | None:
    """The reasoning effort as sent: OpenAI chat's ``reasoning_effort``, the Responses API's
    ``reasoning.effort``, Anthropic's ``output_config.effort``."""
    level = body.get("reasoning_effort")
    if level is None:
        level = _nested(body, "reasoning", "effort")
    if level is None:
        level = _nested(body, "output_config", "effort")
    return level if isinstance(level, str) else None


def _nested(body: Mapping[str, Any], outer: str, inner: str) -> Any:
    value = body.get(outer)
    return value.get(inner) if isinstance(value, Mapping) else None
