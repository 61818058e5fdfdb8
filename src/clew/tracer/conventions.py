"""The extra conventions: the keys Arize Phoenix (OpenInference) and Langfuse read, written on
clew's spans beside ``clew.*`` and ``gen_ai.*``.

Two families, each the keys one backend reads (``CLEW_OTEL_CONVENTIONS`` /
``configure(otel_conventions=...)`` picks them; both by default):

- ``openinference``: ``openinference.span.kind`` (CHAIN by default, the ``kind=`` of
  ``@clew.trace`` / ``clew.span``, LLM or EMBEDDING on LLM calls), ``input.value`` /
  ``output.value`` with their mime types, ``user.id``, ``session.id``, ``tag.tags``, ``metadata``,
  and the resource attribute ``openinference.project.name``.
- ``langfuse``: what Langfuse's published attribute table reads and the other family lacks:
  ``langfuse.observation.type``, ``langfuse.trace.tags``, ``langfuse.observation.metadata.<key>``
  (filterable metadata), ``langfuse.observation.cost_details`` (clew's cost) and
  ``langfuse.observation.completion_start_time`` (a stream's first chunk); and, since its table
  reads them too, the inputs, outputs, user and session under their OpenInference names.

The keys go on the span itself, when clew starts and ends it, so an application that exports
clew's spans with its own OpenTelemetry exporter gets them as well as clew's OTLP exporter.
Every value is clew's own: the same string object as ``clew.inputs``, ``clew.output``,
``clew.metadata`` and the same tuple as ``clew.tags``, so a copy costs a dict entry, not a
string. Omitted content is never written, under any name, since the copies are made from what
clew recorded. What does not change from call to call (kind, tags, metadata given to
``@clew.trace``) is computed once, at decoration time, for each choice of families
(:func:`start_attribute_sets`); the per-span path picks one dict by index. clew's own
records leave the copies out (:data:`clew.attributes.CONVENTION_KEYS`).

``user.id``, ``session.id`` and (on LLM spans, whatever the families) ``gen_ai.conversation.id``
are written on every span below the one given ``end_user_identifier`` / ``session_id``:
both backends treat them as properties of the whole trace, and an LLM call's span has no
options of its own to carry them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from clew import attributes as a
from clew.errors import ConfigurationError
from clew.tracer.serialize import to_json

__all__ = [
    "ALL",
    "FAMILIES",
    "JSON",
    "LANGFUSE",
    "OPENINFERENCE",
    "SPAN_KINDS",
    "Identity",
    "check_kind",
    "families_of",
    "identity_attributes",
    "inherit",
    "mirror",
    "operation_attributes",
    "start_attribute_sets",
    "use",
]

OPENINFERENCE: Final = 1
LANGFUSE: Final = 2
ALL: Final = OPENINFERENCE | LANGFUSE
FAMILIES: Final = {"openinference": OPENINFERENCE, "langfuse": LANGFUSE}
"""The families by name; a choice of families is a bit set (0: ``gen_ai.*`` and ``clew.*``
only)."""

JSON: Final = "application/json"

SPAN_KINDS: Final = (
    "chain",
    "tool",
    "retriever",
    "agent",
    "embedding",
    "reranker",
    "guardrail",
    "evaluator",
    "llm",
    "prompt",
)
"""The ``kind=`` values: OpenInference's span kinds, in lower case."""

# Langfuse's observation type of each kind (its types have no reranker or prompt); a span
# given no kind is a Langfuse "span" (and an OpenInference CHAIN).
_LANGFUSE_TYPES: Final = {
    "chain": "chain",
    "tool": "tool",
    "retriever": "retriever",
    "agent": "agent",
    "embedding": "embedding",
    "reranker": "span",
    "guardrail": "guardrail",
    "evaluator": "evaluator",
    "llm": "generation",
    "prompt": "span",
}

# The kind of a span by its gen_ai.operation.name (as Phoenix and Langfuse infer it).
_OPERATION_KINDS: Final = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "retrieval": "retriever",
}

Identity = tuple[str | None, str | None]
"""``(end user, session)`` a span and the spans below it carry."""

families: int = ALL
"""The families in force (set by :func:`use`, from the tracer's settings)."""


def use(chosen: int) -> None:
    """Make ``chosen`` the families in force (``clew.tracer.entry.install`` calls it)."""
    global families
    families = chosen


def families_of(names: Iterable[str]) -> int:
    """The bit set of the families ``names`` names (keys of :data:`FAMILIES`, as
    :class:`~clew.config.Config` checked them).

    Example:
        >>> families_of(["openinference", "langfuse"]) == ALL
        True
    """
    chosen = 0
    for name in names:
        chosen |= FAMILIES[name]
    return chosen


def check_kind(kind: Any) -> str | None:
    """``kind`` as clew keeps it (lower case), or None when not given.

    Raises:
        ConfigurationError: not one of :data:`SPAN_KINDS`; the message lists them.
    """
    if kind is None:
        return None
    if not isinstance(kind, str) or kind.lower() not in SPAN_KINDS:
        raise ConfigurationError(
            f"kind must be one of {', '.join(SPAN_KINDS)}, got {kind!r}"
            " (OpenInference's span kinds; e.g. @clew.trace(kind='tool'))"
        )
    return kind.lower()


def _langfuse_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """``langfuse.observation.metadata.<key>`` for each top-level key (text as is, else JSON)."""
    return {
        a.LANGFUSE_OBSERVATION_METADATA + str(key): value if type(value) is str else to_json(value)
        for key, value in metadata.items()
    }


def _kind_attributes(kind: str | None, chosen: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if chosen & OPENINFERENCE:
        attrs[a.OPENINFERENCE_SPAN_KIND] = (kind or "chain").upper()
    if chosen & LANGFUSE:
        attrs[a.LANGFUSE_OBSERVATION_TYPE] = _LANGFUSE_TYPES[kind] if kind else "span"
    return attrs


def start_attribute_sets(
    base: Mapping[str, Any], kind: str | None, metadata: Mapping[str, Any] | None
) -> tuple[dict[str, Any], ...]:
    """A span's start attributes for each choice of families (index: the bit set), from the
    attributes its options make (``base``: ``clew.tags``, ``clew.metadata`` …)."""
    tags = base.get(a.CLEW_TAGS)
    text = base.get(a.CLEW_METADATA)
    sets = []
    for chosen in range(ALL + 1):
        attrs = dict(base)
        attrs.update(_kind_attributes(kind, chosen))
        if chosen & OPENINFERENCE:
            if tags:
                attrs[a.TAG_TAGS] = tags
            if text is not None:
                attrs[a.METADATA] = text
        if chosen & LANGFUSE:
            if tags:
                attrs[a.LANGFUSE_TRACE_TAGS] = tags
            if metadata:
                attrs.update(_langfuse_metadata(metadata))
        sets.append(attrs)
    return tuple(sets)


_operation_sets: dict[str, tuple[dict[str, Any], ...]] = {}


def operation_attributes(operation: Any, chosen: int) -> dict[str, Any]:
    """The kind keys of a span with ``gen_ai.operation.name`` ``operation`` (LLM when the
    operation is not one the conventions name)."""
    found = _operation_sets.get(operation)
    if found is None:
        kind = _OPERATION_KINDS.get(operation, "llm") if isinstance(operation, str) else "llm"
        found = tuple(_kind_attributes(kind, c) for c in range(ALL + 1))
        if len(_operation_sets) < 64:
            _operation_sets[operation] = found
    return found[chosen]


def identity_attributes(attrs: dict[str, Any], identity: Identity, chosen: int, llm: bool) -> None:
    """Write the user and session a span carries (its own or inherited) into ``attrs``."""
    user, session = identity
    if chosen:
        if user is not None:
            attrs[a.USER_ID] = user
        if session is not None:
            attrs[a.SESSION_ID] = session
    if llm and session is not None:
        attrs[a.GEN_AI_CONVERSATION_ID] = session


def inherit(own: Identity | None, parent: Identity | None) -> Identity | None:
    """The identity of a span: its own user and session, else its parent's."""
    if own is None:
        return parent
    if parent is None:
        return own
    user, session = own
    return (parent[0] if user is None else user, parent[1] if session is None else session)


# Keys set while a span runs (setters, trace_insert, instrumentations) that have copies.
_WATCHED: Final = {
    a.CLEW_INPUTS,
    a.CLEW_OUTPUT,
    a.CLEW_TAGS,
    a.CLEW_METADATA,
    a.CLEW_END_USER_IDENTIFIER,
    a.CLEW_SESSION_ID,
    a.GEN_AI_INPUT_MESSAGES,
    a.GEN_AI_OUTPUT_MESSAGES,
    a.GEN_AI_USAGE_COST_AMOUNT,
    a.CLEW_TIME_TO_FIRST_TOKEN,
}


def mirror(
    span: Any, metadata: Mapping[str, Any] | None, attrs: dict[str, Any], chosen: int
) -> None:
    """Add to ``attrs`` (what ``span`` set while it ran, written when it ends) the copies of
    its watched keys under the families ``chosen`` (not 0); ``metadata``: its metadata dict.

    An LLM span's messages are its ``input.value`` / ``output.value`` unless it has
    ``clew.inputs`` / ``clew.output`` (a completion's): those win, as on every other span.
    """
    found = attrs.keys() & _WATCHED
    if not found:
        return
    if a.CLEW_INPUTS in found:
        attrs[a.INPUT_VALUE] = attrs[a.CLEW_INPUTS]
        attrs[a.INPUT_MIME_TYPE] = JSON
    elif a.GEN_AI_INPUT_MESSAGES in found and not _started_with(span, a.CLEW_INPUTS):
        attrs[a.INPUT_VALUE] = attrs[a.GEN_AI_INPUT_MESSAGES]
        attrs[a.INPUT_MIME_TYPE] = JSON
    if a.CLEW_OUTPUT in found:
        attrs[a.OUTPUT_VALUE] = attrs[a.CLEW_OUTPUT]
        attrs[a.OUTPUT_MIME_TYPE] = JSON
    elif a.GEN_AI_OUTPUT_MESSAGES in found:
        attrs[a.OUTPUT_VALUE] = attrs[a.GEN_AI_OUTPUT_MESSAGES]
        attrs[a.OUTPUT_MIME_TYPE] = JSON
    if a.CLEW_END_USER_IDENTIFIER in found:
        attrs[a.USER_ID] = attrs[a.CLEW_END_USER_IDENTIFIER]
    if a.CLEW_SESSION_ID in found:
        attrs[a.SESSION_ID] = attrs[a.CLEW_SESSION_ID]
    if a.CLEW_TAGS in found:
        tags = attrs[a.CLEW_TAGS]
        if chosen & OPENINFERENCE:
            attrs[a.TAG_TAGS] = tags
        if chosen & LANGFUSE:
            attrs[a.LANGFUSE_TRACE_TAGS] = tags
    if a.CLEW_METADATA in found:
        if chosen & OPENINFERENCE:
            attrs[a.METADATA] = attrs[a.CLEW_METADATA]
        if chosen & LANGFUSE and metadata:
            attrs.update(_langfuse_metadata(metadata))
    if chosen & LANGFUSE:
        if a.GEN_AI_USAGE_COST_AMOUNT in found:
            cost = {"total": attrs[a.GEN_AI_USAGE_COST_AMOUNT]}
            attrs[a.LANGFUSE_OBSERVATION_COST_DETAILS] = json.dumps(cost)
        if a.CLEW_TIME_TO_FIRST_TOKEN in found:
            start = getattr(span, "start_time", None)
            seconds = attrs[a.CLEW_TIME_TO_FIRST_TOKEN]
            if isinstance(start, int) and isinstance(seconds, int | float):
                first = datetime.fromtimestamp(start / 1e9 + seconds, tz=UTC)
                attrs[a.LANGFUSE_OBSERVATION_COMPLETION_START_TIME] = first.isoformat()


def _started_with(span: Any, key: str) -> bool:
    attributes = getattr(span, "attributes", None)
    return attributes is not None and key in attributes
