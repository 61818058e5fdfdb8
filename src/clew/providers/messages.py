"""Messages in the GenAI semantic-convention shape, and small readers shared by providers.

The convention records messages as ``[{"role": ..., "parts": [...]}]`` with typed parts:
``text`` (``content``), ``tool_call`` (``id``, ``name``, ``arguments``),
``tool_call_response`` (``id``, ``response``), ``reasoning``, ``uri`` / ``blob`` for media.
Output messages add ``finish_reason``. Values are JSON-encoded once, by the caller.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from clew import attributes as a
from clew.tracer.serialize import to_json

__all__ = ["get", "param_attributes", "text_part", "tool_call_part", "tool_definitions"]

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
    if tools:
        return {a.GEN_AI_TOOL_DEFINITIONS: to_json(tools, max_bytes)}
    return {}


def text_part(text: Any) -> Part:
    """A text part."""
    return {"type": "text", "content": text}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> Part:
    """A tool-call part; JSON arguments are decoded so they read as objects."""
    if isinstance(arguments, str):
        # partial or invalid JSON: keep the text the model produced
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments)
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


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


_PARAMS = {
    "temperature": a.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": a.GEN_AI_REQUEST_TOP_P,
    "top_k": a.GEN_AI_REQUEST_TOP_K,
    "frequency_penalty": a.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": a.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": a.GEN_AI_REQUEST_SEED,
    "max_tokens": a.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": a.GEN_AI_REQUEST_MAX_TOKENS,
    "max_output_tokens": a.GEN_AI_REQUEST_MAX_TOKENS,
}
_PARAM_KEYS = frozenset(_PARAMS)


def param_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``gen_ai.request.*`` parameters found in a request body."""
    attrs: dict[str, Any] = {}
    model = body.get("model")
    if isinstance(model, str):
        attrs[a.GEN_AI_REQUEST_MODEL] = model
    for key in _PARAM_KEYS.intersection(body):
        value = body[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[_PARAMS[key]] = value
    stop = body.get("stop") or body.get("stop_sequences")
    if isinstance(stop, str):
        attrs[a.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, list | tuple) and stop:
        attrs[a.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        attrs[a.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if body.get("stream"):
        attrs[a.CLEW_REQUEST_STREAM] = True
    fmt = body.get("response_format")
    kind = fmt.get("type") if fmt is not None and isinstance(fmt, Mapping) else None
    if kind in ("json_object", "json_schema"):
        attrs[a.GEN_AI_OUTPUT_TYPE] = "json"
    elif kind == "text":
        attrs[a.GEN_AI_OUTPUT_TYPE] = "text"
    return attrs
