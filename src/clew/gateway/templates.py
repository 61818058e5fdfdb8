"""Prompt templates: ``{{name}}`` placeholders in messages, filled from ``llm_inputs``.

A placeholder is two opening braces, a name, two closing braces: ``{{topic}}``, ``{{ topic }}``
(spaces inside the braces are allowed). A name is letters, digits and underscores, not
starting with a digit. Anything else is text and is left alone, so JSON, code and other
template languages in a prompt survive: ``{{``, ``{{ 1 + 1 }}``, ``{{a.b}}``, ``{ {x} }``.

Placeholders are filled in a message's ``content`` when it is a string, and in the ``text`` of
its content parts (``{"type": "text", "text": "..."}``). Other fields and parts are untouched.

A value is inserted as follows:

- ``str``: as is.
- ``int``, ``float``, ``bool``: Python's ``str()``: ``3``, ``0.5``, ``True``, ``False``.
- anything else (dicts, lists, ``None``, dates, pydantic models ...): its JSON text,
  ``{"a": 1}``, ``[1, 2]``, ``null``.

Filling is one pass: a value that itself contains ``{{name}}`` is inserted literally and never
filled again. A placeholder without an input is an error that names every missing one; an
input no placeholder uses is fine.

Example:
    >>> from clew.gateway.schemas import Message
    >>> render([Message(content="Summarise {{ topic }} in {{n}} words")], {"topic": "tea", "n": 5})
    [Message(content='Summarise tea in 5 words', role=<Role.user: 'user'>)]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic_core

from clew.errors import InvalidRequestError
from clew.gateway.deployments import Deployment
from clew.gateway.schemas import LLMInputs, Message, ModelParams

__all__ = ["PLACEHOLDER", "merge", "render", "value_text", "variables"]

PLACEHOLDER = re.compile(r"\{\{\s*([^\W\d]\w*)\s*\}\}")
"""A ``{{name}}`` placeholder; group 1 is the name."""


def _texts(message: Message) -> Iterator[str]:
    """The template text of a message: its string content or the text of its content parts."""
    content = message.content
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def variables(messages: list[Message]) -> set[str]:
    """The names of the placeholders the messages use.

    Example:
        >>> sorted(variables([Message(content="{{a}} and {{ b }}, not {{ c.d }}")]))
        ['a', 'b']
    """
    return {name for m in messages for text in _texts(m) for name in PLACEHOLDER.findall(text)}


def value_text(value: Any) -> str:
    """How an input is written into a prompt (see the module's documentation)."""
    if isinstance(value, str):
        return str.__str__(value)  # the text itself, also for a str subclass or enum
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(pydantic_core.to_jsonable_python(value, fallback=str), ensure_ascii=False)


def _missing(messages: list[Message], inputs: Mapping[str, Any]) -> dict[str, list[int]]:
    """The names without an input, in the order they first appear, and where they are used."""
    missing: dict[str, list[int]] = {}
    for index, message in enumerate(messages):
        for text in _texts(message):
            for name in PLACEHOLDER.findall(text):
                if name not in inputs:
                    where = missing.setdefault(name, [])
                    if index not in where:
                        where.append(index)
    return missing


def _missing_error(missing: dict[str, list[int]]) -> InvalidRequestError:
    described = ", ".join(
        f"{name!r} (used in {', '.join(f'messages[{i}]' for i in where)})"
        for name, where in missing.items()
    )
    plural = len(missing) > 1
    return InvalidRequestError(
        f"missing template variable{'s' if plural else ''} {described};"
        f" give {'them' if plural else 'it'} in llm_inputs",
        param=f"llm_inputs.{next(iter(missing))}",
        code="missing_variable",
    )


def render(messages: list[Message], inputs: Mapping[str, Any] | None) -> list[Message]:
    """The messages with every ``{{name}}`` filled from ``inputs``; the given ones are not
    changed. A message without placeholders is returned as it is.

    Raises:
        InvalidRequestError: placeholders without an input (``code="missing_variable"``,
            ``param="llm_inputs.<first missing name>"``); the message names all of them and
            the messages that use them.
    """
    given: Mapping[str, Any] = inputs or {}
    missing = _missing(messages, given)
    if missing:
        raise _missing_error(missing)
    texts: dict[str, str] = {}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in texts:
            texts[name] = value_text(given[name])
        return texts[name]

    def filled(text: str) -> str:
        return PLACEHOLDER.sub(fill, text)

    rendered = []
    for message in messages:
        content = message.content
        if isinstance(content, str) and PLACEHOLDER.search(content):
            message = message.model_copy(update={"content": filled(content)})
        elif isinstance(content, list) and any(PLACEHOLDER.search(t) for t in _texts(message)):
            parts = [
                {**part, "text": filled(part["text"])}
                if isinstance(part, dict) and isinstance(part.get("text"), str)
                else part
                for part in content
            ]
            message = message.model_copy(update={"content": parts})
        rendered.append(message)
    return rendered


def _params(deployed: ModelParams | None, given: ModelParams | None) -> ModelParams | None:
    """Model parameters field by field: the ones the caller set win over the deployment's."""
    if deployed is None or given is None:
        return given if deployed is None else deployed
    fields = deployed.model_dump(include=deployed.model_fields_set)
    fields.update(given.model_dump(include=given.model_fields_set))
    return ModelParams.model_validate(fields)


def merge(
    deployment: Deployment,
    configuration: LLMInputs,
    *,
    inputs: Mapping[str, Any] | None = None,
) -> LLMInputs:
    """The ``llm_configuration`` of a call to a deployment: the deployment's prompt with the
    caller's overrides, and the history in front.

    - ``model``, ``provider``, ``messages``, ``functions``, ``function_call``: the caller's
      when set in ``configuration`` (and not None), else the deployment's.
    - ``model_params``: merged field by field; the fields the caller set win.
    - The result's ``messages`` are the caller's ``history`` first, then the messages (the
      caller's if given, else the deployment's); its ``history`` is None.
    - With ``inputs`` (a mapping, even an empty one) the messages are rendered (see
      :func:`render`) before the history is put in front: the history is what was said, not
      a template, so a ``{{...}}`` in it is kept as it is. Without ``inputs`` nothing is
      rendered.

    The deployment's ``fallbacks`` are not part of ``llm_configuration``: the caller reads them
    from the deployment.

    Raises:
        InvalidRequestError: with ``inputs``, a placeholder has no input (see :func:`render`);
            ``messages[i]`` in the message counts the messages without the history.
    """
    given = {
        name: getattr(configuration, name)
        for name in configuration.model_fields_set
        if getattr(configuration, name) is not None
    }
    messages = given.get("messages", deployment.messages)
    if inputs is not None:
        messages = render(messages, inputs)
    merged: dict[str, Any] = {
        "model": given.get("model", deployment.model),
        "provider": given.get("provider", deployment.provider),
        "messages": [*given.get("history", []), *messages],
    }
    params = _params(deployment.model_params, given.get("model_params"))
    if params is not None:
        merged["model_params"] = params
    for name in ("functions", "function_call"):
        value = given.get(name, getattr(deployment, name))
        if value is not None:
            merged[name] = value
    return LLMInputs.model_validate(merged)
