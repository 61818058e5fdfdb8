"""A validator of LLM spans against the OpenTelemetry GenAI semantic conventions.

The conventions are vendored in ``semconv/`` (its README names the source repositories and
commits): the attribute registries, the span definitions with their provider refinements, and
the JSON schemas of the structured attributes. :func:`violations` reads a span's attributes,
and what the recorded call said (a :class:`Call`), and lists every way they fall short:

- **Keys.** A key in a namespace a vendored registry defines (``gen_ai``, ``openai``, ``server``,
  ``error``, ``http``) must be in a registry (deprecated ones are not vendored). Allowed beside
  them: clew's own ``clew.*`` keys, clew's proposal ``gen_ai.usage.cost.*``, and the keys of
  the extra conventions clew writes for Phoenix and Langfuse. Any other key is reported. A key
  a provider's refinement brings (``openai.*``) is only on that provider's spans.
- **Types.** A value has its registry type: ``string``, ``int``, ``double`` (an int is not a
  double), ``boolean``, ``string[]``... An enum value is one of its members, unless the
  registry shows other values among its examples (an open enum such as ``error.type``) or the
  value is one of :data:`CUSTOM_VALUES`.
- **JSON values.** The attributes the registry annotates with a JSON schema (input and output
  messages, system instructions, tool definitions) are JSON text valid against that schema.
- **Requirements.** The span definition is the one for its ``gen_ai.operation.name``, refined
  for its ``gen_ai.provider.name``: required attributes are present; conditionally required
  ones are present when their condition holds (:data:`CONDITIONS`, judged from the call);
  recommended ones are present when the call had the data (:data:`AVAILABLE`); some values must
  be what the call said (:data:`EXPECTED`); a stream cut short reports the finish reason
  ``error``.
- **Messages.** Every tool call the call carried (in its request or in what the client received)
  appears in the messages as a part of its kind: a client tool call by its name, a server tool
  call, a server tool result.
- **Span.** Kind CLIENT and the name ``{gen_ai.operation.name} {gen_ai.request.model}``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema_specifications import REGISTRY as METASCHEMAS

from clew import attributes as a

__all__ = [
    "AVAILABLE",
    "CONDITIONS",
    "CUSTOM_VALUES",
    "EXPECTED",
    "Call",
    "Conventions",
    "conventions",
    "violations",
]

SEMCONV = Path(__file__).resolve().parent / "semconv"
REGISTRIES = (
    "model/gen-ai/registry.yaml",
    "model/openai/registry.yaml",
    "core/model/server/registry.yaml",
    "core/model/error/registry.yaml",
    "core/model/http/registry.yaml",
)
SPANS = "model/gen-ai/spans.yaml"

CHECKED_NAMESPACES = ("gen_ai.", "openai.", "server.", "error.", "http.")
"""Namespaces whose keys must be in a vendored registry."""

SHARED_NAMESPACES = ("gen_ai.", "server.", "error.", "http.")
"""Namespaces of keys every provider's spans use (the others belong to one provider)."""

CLEW_PROPOSALS = ("gen_ai.usage.cost.",)
"""``gen_ai`` keys that are clew's own proposal (cost has no convention yet)."""

CUSTOM_VALUES: dict[str, frozenset[str]] = {
    # The registry's provider list is open ("set based on the instrumentation's best
    # knowledge"): a provider it has no member for keeps clew's name. One with a member must use
    # it (azure → azure.ai.openai, mistral → mistral_ai ...).
    "gen_ai.provider.name": frozenset(
        {"openrouter", "litellm", "fireworks", "together", "anyscale", "vllm", "ollama"}
    ),
}
"""Values outside an enum's members that are allowed, by key."""

INFERENCE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
SPAN_TYPES = {
    **dict.fromkeys(INFERENCE_OPERATIONS, "gen_ai.client.inference"),
    "embeddings": "gen_ai.embeddings.client",
    "retrieval": "gen_ai.retrieval.client",
}
"""The span definition of each ``gen_ai.operation.name``."""

_REFINED_FOR = re.compile(r'`gen_ai\.provider\.name` MUST be set to `"([^"]+)"`')


# -- the vendored conventions ---------------------------------------------------------------
@dataclass(frozen=True)
class Attribute:
    """One registry attribute.

    Attributes:
        key: the key (for a template, its prefix).
        type: ``string``, ``int``, ``double``, ``boolean``, ``string[]`` ..., ``any``,
            ``template[...]``, or ``enum``.
        members: an enum's member values.
        open: an enum whose examples show values that are not members.
        schema: the JSON schema the value follows, when the registry names one.
        deprecated: the registry marks it deprecated.
    """

    key: str
    type: str
    members: frozenset[Any] = frozenset()
    open: bool = False
    schema: Draft202012Validator | None = None
    deprecated: bool = False


@dataclass
class Conventions:
    """The vendored registry and span definitions.

    Attributes:
        attributes: every registry attribute by key.
        templates: the template attributes by key prefix (``gen_ai.prompt.variable``).
        levels: each span definition's (and refinement's) requirement level by key:
            ``required``, ``conditionally_required``, ``recommended`` or ``opt_in``.
        refinements: the refinement of a span type for a provider: ``(type, provider) → id``.
        owners: the provider whose refinement brings a provider-specific key
            (``openai.api.type`` → ``openai``).
    """

    attributes: dict[str, Attribute] = field(default_factory=dict)
    templates: dict[str, Attribute] = field(default_factory=dict)
    levels: dict[str, dict[str, str]] = field(default_factory=dict)
    refinements: dict[tuple[str, str], str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def definition(self, operation: Any, provider: Any) -> dict[str, str] | None:
        """The requirement levels of a span with this operation and provider."""
        span_type = SPAN_TYPES.get(operation)
        if span_type is None:
            return None
        refined = self.refinements.get((span_type, provider))
        return self.levels[refined or span_type]


def _entries(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The attribute entries of a registry file (semconv's v2 format, or v1 groups)."""
    yield from document.get("attributes") or ()
    for group in document.get("groups") or ():
        yield from group.get("attributes") or ()


def _attribute(entry: Mapping[str, Any]) -> Attribute:
    key = entry.get("key") or entry["id"]
    kind = entry["type"]
    deprecated = "deprecated" in entry
    schema = None
    annotation = ((entry.get("annotations") or {}).get("type") or {}).get("json_schema")
    if annotation and (SEMCONV / annotation).exists():
        document = json.loads((SEMCONV / annotation).read_text(encoding="utf-8"))
        schema = Draft202012Validator(document, registry=METASCHEMAS)
    if isinstance(kind, Mapping):
        members = frozenset(m["value"] for m in kind["members"])
        examples = entry.get("examples")
        examples = examples if isinstance(examples, list) else [examples]
        shown = {e for e in examples if isinstance(e, str | int)}
        return Attribute(key, "enum", members, bool(shown - members), schema, deprecated)
    return Attribute(key, str(kind), schema=schema, deprecated=deprecated)


def _level(requirement: Any) -> str:
    return next(iter(requirement)) if isinstance(requirement, Mapping) else str(requirement)


def _resolve(
    refs: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
    levels: dict[str, str],
) -> None:
    """Apply a definition's attribute list to ``levels``: groups expanded, later refs win when
    they give a level (a ref that only marks an attribute sampling-relevant keeps it)."""
    for ref in refs:
        if "ref_group" in ref:
            _resolve(groups[ref["ref_group"]], groups, levels)
        elif "requirement_level" in ref:
            levels[ref["ref"]] = _level(ref["requirement_level"])
        else:
            levels.setdefault(ref["ref"], "recommended")


@functools.cache
def conventions() -> Conventions:
    """The vendored conventions, read once."""
    found = Conventions()
    for path in REGISTRIES:
        document = yaml.safe_load((SEMCONV / path).read_text(encoding="utf-8"))
        for entry in _entries(document):
            attribute = _attribute(entry)
            if attribute.type.startswith("template["):
                inner = attribute.type[len("template[") : -1]
                found.templates[attribute.key] = Attribute(attribute.key, inner)
            else:
                found.attributes[attribute.key] = attribute
    spans = yaml.safe_load((SEMCONV / SPANS).read_text(encoding="utf-8"))
    groups = {g["id"]: g["attributes"] for g in spans["attribute_groups"]}
    for span in spans["spans"]:
        levels: dict[str, str] = {}
        _resolve(span["attributes"], groups, levels)
        found.levels[span["type"]] = levels
    for refinement in spans.get("span_refinements") or ():
        levels = dict(found.levels[refinement["ref"]])
        _resolve(refinement["attributes"], groups, levels)
        found.levels[refinement["id"]] = levels
        provider = _REFINED_FOR.search(refinement.get("note") or "")
        if provider:
            found.refinements[(refinement["ref"], provider.group(1))] = refinement["id"]
            for ref in refinement["attributes"]:
                if not ref.get("ref", "gen_ai.").startswith(SHARED_NAMESPACES):
                    found.owners[ref["ref"]] = provider.group(1)
    return found


# -- the call a span recorded ----------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """What the recorded call said, to judge conditions and what data there was.

    Attributes:
        route: the API path (``/v1/chat/completions``, ``/v1/responses``, ``/v1/messages`` ...).
        request: the request body.
        received: what the client received: the response body, or the stream events it read.
        stream: the request asked for a stream.
        cut: the stream ended before its last event (the client stopped, or it broke).
        failed: the call ended in an error (an HTTP error status, a broken stream).
    """

    route: str
    request: Mapping[str, Any]
    received: Sequence[Mapping[str, Any]] = ()
    stream: bool = False
    cut: bool = False
    failed: bool = False

    @property
    def answered(self) -> bool:
        """The provider answered (not with an HTTP error): there is a response to read."""
        return bool(self.received) and not (self.failed and not self.cut)

    def found(self, key: str) -> Any:
        """The first value of ``key`` in what was received: at the top of a body or an event,
        or in the response / message an event carries (None when none is)."""
        for item in self.received:
            for scope in (item, item.get("response"), item.get("message")):
                if isinstance(scope, Mapping) and scope.get(key) not in (None, ""):
                    return scope[key]
        return None

    @property
    def has_usage(self) -> bool:
        """The provider reported token usage."""
        return any(True for _ in self._usages())

    def usage(self, *paths: str) -> int:
        """The largest count at one of ``paths`` (``a.b``) in any usage received."""
        best = 0
        for usage in self._usages():
            for path in paths:
                value: Any = usage
                for name in path.split("."):
                    value = value.get(name) if isinstance(value, Mapping) else None
                if isinstance(value, int) and not isinstance(value, bool):
                    best = max(best, value)
        return best

    def _usages(self) -> Iterator[Mapping[str, Any]]:
        for item in self.received:
            for scope in (item, item.get("response"), item.get("message")):
                usage = scope.get("usage") if isinstance(scope, Mapping) else None
                if isinstance(usage, Mapping):
                    yield usage


def _param(call: Call, *names: str) -> Any:
    """The first request parameter present among ``names`` (``a.b`` reads a nested one)."""
    for name in names:
        value: Any = call.request
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return value
    return None


def output_type(call: Call) -> str | None:
    """The ``gen_ai.output.type`` an output format in the request names (None: no format)."""
    fmt = _param(call, "response_format", "text.format", "output_format", "output_config.format")
    kind = fmt.get("type") if isinstance(fmt, Mapping) else fmt
    if kind in ("json_object", "json_schema", "json"):
        return "json"
    return "text" if kind == "text" else None


_API_TYPES = {"/v1/chat/completions": "chat_completions", "/v1/responses": "responses"}

CONDITIONS: dict[str, Callable[[Mapping[str, Any], Call], bool]] = {
    "error.type": lambda attrs, call: call.failed,
    "server.port": lambda attrs, call: a.SERVER_ADDRESS in attrs,
    "gen_ai.request.model": lambda attrs, call: isinstance(call.request.get("model"), str),
    "gen_ai.request.choice.count": lambda attrs, call: _param(call, "n") not in (None, 1),
    "gen_ai.request.top_k": lambda attrs, call: _param(call, "top_k") is not None,
    "gen_ai.request.seed": lambda attrs, call: _param(call, "seed") is not None,
    "gen_ai.output.type": lambda attrs, call: output_type(call) is not None,
    "gen_ai.request.stream": lambda attrs, call: call.stream,
    "gen_ai.prompt.name": lambda attrs, call: _param(call, "prompt.id") is not None,
    "gen_ai.prompt.version": lambda attrs, call: (
        "gen_ai.prompt.name" in attrs and _param(call, "prompt.version") is not None
    ),
    "gen_ai.conversation.id": lambda attrs, call: _param(call, "conversation") is not None,
    "openai.request.service_tier": lambda attrs, call: (
        _param(call, "service_tier") not in (None, "auto")
    ),
    "openai.response.service_tier": lambda attrs, call: (
        call.answered and call.found("service_tier") is not None
    ),
}
"""When each conditionally required attribute must be present, judged from the call."""

IF_AND_ONLY_IF = frozenset({"gen_ai.request.stream"})
"""Conditionally required attributes that must be absent when their condition does not hold."""


def _reasoning_level(call: Call) -> Any:
    return _param(call, "reasoning_effort", "reasoning.effort", "output_config.effort")


AVAILABLE: dict[str, Callable[[Call], bool]] = {
    "server.address": lambda call: True,
    "gen_ai.request.max_tokens": lambda call: (
        _param(call, "max_tokens", "max_completion_tokens", "max_output_tokens") is not None
    ),
    "gen_ai.request.temperature": lambda call: _param(call, "temperature") is not None,
    "gen_ai.request.top_p": lambda call: _param(call, "top_p") is not None,
    "gen_ai.request.top_k": lambda call: _param(call, "top_k") is not None,
    "gen_ai.request.stop_sequences": lambda call: bool(_param(call, "stop", "stop_sequences")),
    "gen_ai.request.frequency_penalty": lambda call: _param(call, "frequency_penalty") is not None,
    "gen_ai.request.presence_penalty": lambda call: _param(call, "presence_penalty") is not None,
    "gen_ai.request.reasoning.level": lambda call: _reasoning_level(call) is not None,
    "gen_ai.request.previous_response.id": lambda call: (
        _param(call, "previous_response_id") is not None
    ),
    "gen_ai.request.encoding_formats": lambda call: _param(call, "encoding_format") is not None,
    "gen_ai.embeddings.dimension.count": lambda call: _param(call, "dimensions") is not None,
    "gen_ai.response.id": lambda call: call.answered and call.found("id") is not None,
    "gen_ai.response.model": lambda call: call.answered and call.found("model") is not None,
    "gen_ai.response.finish_reasons": lambda call: call.answered,
    "gen_ai.response.time_to_first_chunk": lambda call: call.stream and call.answered,
    "gen_ai.usage.input_tokens": lambda call: call.answered and call.has_usage,
    "gen_ai.usage.output_tokens": lambda call: call.answered and call.has_usage,
    "gen_ai.usage.cache_read.input_tokens": lambda call: (
        call.usage(
            "prompt_tokens_details.cached_tokens",
            "input_tokens_details.cached_tokens",
            "cache_read_input_tokens",
        )
        > 0
    ),
    "gen_ai.usage.cache_write.input_tokens": lambda call: (
        call.usage("cache_creation_input_tokens") > 0
    ),
    "gen_ai.usage.reasoning.output_tokens": lambda call: (
        call.usage(
            "completion_tokens_details.reasoning_tokens", "output_tokens_details.reasoning_tokens"
        )
        > 0
    ),
    "openai.response.system_fingerprint": lambda call: (
        call.answered and call.found("system_fingerprint") is not None
    ),
    "openai.api.type": lambda call: call.route in _API_TYPES,
}
"""When each recommended attribute must be present: when the call had the data."""

EXPECTED: dict[str, Callable[[Call], Any]] = {
    "gen_ai.request.model": lambda call: call.request.get("model"),
    "gen_ai.request.stream": lambda call: True,
    "gen_ai.output.type": output_type,
    "gen_ai.request.reasoning.level": _reasoning_level,
    "openai.api.type": lambda call: _API_TYPES.get(call.route),
    "openai.request.service_tier": lambda call: _param(call, "service_tier"),
}
"""What some attributes must say, when present."""


# -- the checks -------------------------------------------------------------------------------
def violations(
    attributes: Mapping[str, Any],
    call: Call | None = None,
    *,
    name: str | None = None,
    kind: str | None = None,
) -> list[str]:
    """Every way an LLM span falls short of the conventions (empty when it conforms).

    Args:
        attributes: the span's attributes.
        call: what the recorded call said; without it, only what the attributes alone show
            is checked (keys, types, JSON values, unconditional requirements).
        name: the span's name, checked when given.
        kind: the span's kind (``CLIENT`` ...), checked when given.
    """
    found = conventions()
    problems = [*_keys_and_types(found, attributes), *_json_values(found, attributes)]
    operation = attributes.get(a.GEN_AI_OPERATION_NAME)
    provider = attributes.get(a.GEN_AI_PROVIDER_NAME)
    for key in attributes.keys() & found.owners.keys():
        if found.owners[key] != provider:
            problems.append(f"{key}: {found.owners[key]}'s refinement, on a span of {provider!r}")
    levels = found.definition(operation, provider)
    if levels is None:
        problems.append(f"no span definition for gen_ai.operation.name {operation!r}")
    else:
        problems.extend(_requirements(levels, attributes, call))
    if call is not None:
        problems.extend(_finish_reasons(attributes, call, operation))
        problems.extend(_tool_calls(attributes, call))
    if kind is not None and kind != "CLIENT":
        problems.append(f"span kind {kind}, not CLIENT")
    model = attributes.get(a.GEN_AI_REQUEST_MODEL)
    if name is not None and name != (f"{operation} {model}" if model else operation):
        problems.append(f"span name {name!r}, not '{{operation}} {{model}}'")
    return problems


def _allowed_outside_registry(key: str) -> bool:
    return (
        key.startswith("clew.")
        or key.startswith(CLEW_PROPOSALS)
        or key in a.CONVENTION_KEYS
        or key.startswith(a.LANGFUSE_OBSERVATION_METADATA)
    )


def _keys_and_types(found: Conventions, attributes: Mapping[str, Any]) -> Iterator[str]:
    for key, value in attributes.items():
        attribute = found.attributes.get(key)
        if attribute is None:
            attribute = next(
                (t for prefix, t in found.templates.items() if key.startswith(prefix + ".")),
                None,
            )
        if attribute is None:
            if not _allowed_outside_registry(key):
                where = "registry" if key.startswith(CHECKED_NAMESPACES) else "conventions"
                yield f"{key}: not in the {where}"
            continue
        if attribute.deprecated:
            yield f"{key}: deprecated"
        problem = _type_problem(attribute, value)
        if problem:
            yield f"{key}: {problem}"


_SCALARS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: type(v) is str,
    "int": lambda v: type(v) is int,
    "double": lambda v: type(v) is float,
    "boolean": lambda v: type(v) is bool,
}


def _type_problem(attribute: Attribute, value: Any) -> str | None:
    kind = attribute.type
    if kind == "any":
        return None
    if kind == "enum":
        if value in attribute.members or attribute.open:
            return None
        if value in CUSTOM_VALUES.get(attribute.key, ()):
            return None
        return f"{value!r} is not a well-known value ({', '.join(sorted(attribute.members))})"
    if kind.endswith("[]"):
        check = _SCALARS[kind[:-2]]
        if isinstance(value, tuple | list) and all(check(v) for v in value):
            return None
        return f"{value!r} is not {kind}"
    if _SCALARS[kind](value):
        return None
    return f"{value!r} ({type(value).__name__}) is not {kind}"


def _json_values(found: Conventions, attributes: Mapping[str, Any]) -> Iterator[str]:
    for key, value in attributes.items():
        attribute = found.attributes.get(key)
        if attribute is None or attribute.schema is None:
            continue
        try:
            document = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            yield f"{key}: not JSON"
            continue
        for error in attribute.schema.iter_errors(document):
            path = "/".join(str(p) for p in error.absolute_path)
            yield f"{key}: schema: at /{path}: {error.message[:160]}"


def _requirements(
    levels: Mapping[str, str], attributes: Mapping[str, Any], call: Call | None
) -> Iterator[str]:
    for key, level in levels.items():
        present = key in attributes
        if level == "required" and not present:
            yield f"{key}: required, missing"
        if call is None:
            continue
        if level == "conditionally_required" and key in CONDITIONS:
            holds = CONDITIONS[key](attributes, call)
            if holds and not present:
                yield f"{key}: conditionally required, missing"
            elif present and not holds and key in IF_AND_ONLY_IF:
                yield f"{key}: set although its condition does not hold"
        elif level == "recommended" and not present and key in AVAILABLE and AVAILABLE[key](call):
            yield f"{key}: recommended, missing although the call had it"
        if present and key in EXPECTED:
            expected = EXPECTED[key](call)
            if expected is not None and attributes[key] != expected:
                yield f"{key}: {attributes[key]!r}, the call says {expected!r}"


def _finish_reasons(attributes: Mapping[str, Any], call: Call, operation: Any) -> Iterator[str]:
    """A stream cut short has not finished: the conventions say ``error`` for it."""
    reasons = attributes.get(a.GEN_AI_RESPONSE_FINISH_REASONS)
    if operation not in INFERENCE_OPERATIONS or not call.cut or reasons is None:
        return
    if call.found("finish_reason") is not None or call.found("stop_reason") is not None:
        return  # the one event read said how the generation ended
    if not reasons or any(r != "error" for r in reasons):
        yield f"gen_ai.response.finish_reasons: {list(reasons)} for a stream cut short"


# -- tool calls in the messages ----------------------------------------------------------------
_SERVER_CALLS = frozenset({"server_tool_use", "mcp_tool_use"})


def _expected_parts(value: Any) -> Iterator[tuple[str, str, str | None]]:
    """``(part type, id, name)`` of every tool call and server tool result inside ``value``
    (a request or a response, in any provider's shape)."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from _expected_parts(item)
        return
    if not isinstance(value, Mapping):
        return
    kind = value.get("type")
    call_id = value.get("call_id") or value.get("id")  # a Responses item: call_id is the call
    if isinstance(kind, str) and isinstance(call_id, str) and call_id:
        if kind in ("tool_use", "function_call", "custom_tool_call"):
            yield "tool_call", call_id, value.get("name")
        elif kind in _SERVER_CALLS:
            yield "server_tool_call", call_id, value.get("name")
        elif kind == "function" and isinstance(value.get("function"), Mapping):
            yield "tool_call", call_id, value["function"].get("name")
        elif kind == "custom" and isinstance(value.get("custom"), Mapping):
            yield "tool_call", call_id, value["custom"].get("name")
    result_of = value.get("tool_use_id")
    server_result = (
        isinstance(kind, str) and kind.endswith("_tool_result") and kind != "tool_result"
    )
    if server_result and isinstance(result_of, str):
        yield "server_tool_call_response", result_of, None
    for item in value.values():
        if isinstance(item, Mapping | list | tuple):
            yield from _expected_parts(item)


def _parts(attributes: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    parts: list[Mapping[str, Any]] = []
    for key in (a.GEN_AI_INPUT_MESSAGES, a.GEN_AI_OUTPUT_MESSAGES):
        try:
            messages = json.loads(attributes.get(key) or "[]")
        except ValueError:
            continue
        for message in messages if isinstance(messages, list) else ():
            if isinstance(message, Mapping):
                parts.extend(p for p in message.get("parts") or () if isinstance(p, Mapping))
    return parts


def _tool_calls(attributes: Mapping[str, Any], call: Call) -> Iterator[str]:
    if a.GEN_AI_INPUT_MESSAGES not in attributes and a.GEN_AI_OUTPUT_MESSAGES not in attributes:
        return  # content not captured
    parts = _parts(attributes)
    for part_type, call_id, name in {
        *_expected_parts(call.request),
        *_expected_parts(list(call.received)),
    }:
        matching = [p for p in parts if p.get("id") == call_id]
        if not any(p.get("type") == part_type for p in matching):
            kinds = sorted({str(p.get("type")) for p in matching}) or ["nothing"]
            yield f"messages: {call_id} is a {part_type}, recorded as {', '.join(kinds)}"
        elif name and not any(p.get("name") == name for p in matching):
            yield f"messages: {part_type} {call_id} is named {name!r}"
