"""Deployed prompts: named, versioned prompts kept in the local store (``clew.deployments``).

A deployment is a prompt a completion can name instead of spelling it out
(``clew.completion(deployment_id="support-answer", llm_inputs={...})``): the provider, the
model and its parameters, the messages with ``{{variable}}`` placeholders (see
:mod:`clew.gateway.templates`), the functions, and the fallback models. Adding a deployment
whose id exists stores a new version; a completion uses the latest.

Example:
    >>> import clew
    >>> clew.deployments.add({  # doctest: +SKIP
    ...     "id": "support-answer", "provider": "openai", "model": "gpt-4o-mini",
    ...     "messages": [{"role": "system", "content": "Answer about {{product}}."}],
    ... }).version
    1
    >>> clew.deployments.get("support-answer").model  # doctest: +SKIP
    'gpt-4o-mini'

The store is the one ``clew.configure(store_path=...)`` (or ``$CLEW_STORE``) names, by default
``.clew/traces.db``; each function takes ``store=`` to use another file.
"""

from __future__ import annotations

import builtins
import difflib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clew import setup
from clew.errors import ConfigurationError, InvalidRequestError, StoreError
from clew.gateway.schemas import Message, ModelParams, ProviderName
from clew.store import deployments as stored

__all__ = ["Deployment", "add", "get", "list", "load_file"]

ID_PATTERN = r"^[A-Za-z0-9._-]+$"
"""What a deployment id is made of: letters, digits, ``-``, ``_`` and ``.``."""

_SET_BY_THE_STORE = ("version", "created_at")
_COMPUTED = ("variables",)


class Deployment(BaseModel):
    """One version of a deployed prompt.

    Unknown fields are refused, so a typo (``modle``) is caught when the deployment is added.
    ``version`` and ``created_at`` are set by the store: given ones are ignored by :func:`add`,
    as is ``variables`` (what ``clew deployments show --json`` adds), so a deployment shown by
    the CLI can be edited and added back as a new version.

    Attributes:
        id: letters, digits, ``-``, ``_`` and ``.``.
        version: 1, 2, ... in the order the versions were added; 0 until stored.
        created_at: when this version was stored (ISO 8601, UTC); empty until stored.
        provider: the provider to call.
        model: the model to call.
        model_params: the parameters sent with the call (only the ones set are sent).
        messages: the prompt, with ``{{variable}}`` placeholders.
        functions: function schemas, in the OpenAI API format.
        function_call: ``"auto"``, ``"none"``, or ``{"name": ...}``.
        fallbacks: the models to try, in order, when the call fails: ``"provider/model"`` or
            a model name (served by ``provider``).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    version: int = Field(default=0, ge=0)
    created_at: str = ""
    provider: ProviderName
    model: str = Field(min_length=1)
    model_params: ModelParams | None = None
    messages: builtins.list[Message] = Field(min_length=1)
    functions: builtins.list[dict[str, Any]] | None = None
    function_call: str | dict[str, str] | None = None
    fallbacks: builtins.list[str] = Field(default_factory=builtins.list)

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(key in data for key in _COMPUTED):
            data = {k: v for k, v in data.items() if k not in _COMPUTED}
        return data

    @field_validator("fallbacks")
    @classmethod
    def _check_fallbacks(cls, fallbacks: builtins.list[str]) -> builtins.list[str]:
        for fallback in fallbacks:
            if not fallback.strip() or fallback != fallback.strip():
                raise ValueError(
                    f"{fallback!r} is not a model: give 'provider/model' or a model name"
                )
        return fallbacks


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "deployment"


def _problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = _where(error["loc"])
        if error["type"] == "extra_forbidden":
            name = str(error["loc"][-1])
            known = Deployment.model_fields if len(error["loc"]) == 1 else ModelParams.model_fields
            close = difflib.get_close_matches(name, builtins.list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown field{hint}")
        elif error["type"] == "missing":
            problems.append(f"{where}: missing (required)")
        else:
            got = repr(error.get("input"))
            got = got if len(got) <= 80 else got[:79] + "…"
            problems.append(f"{where}: {error['msg']} (got {got})")
    return "; ".join(problems)


def _validated(deployment: object, source: str) -> Deployment:
    if isinstance(deployment, Deployment):
        return deployment
    if deployment is None:
        raise ConfigurationError(f"{source}: empty; expected one deployment")
    if not isinstance(deployment, dict):
        raise ConfigurationError(
            f"{source}: expected one deployment (a mapping of its fields),"
            f" got {type(deployment).__name__}"
        )
    try:
        return Deployment.model_validate(deployment)
    except ValidationError as exc:
        raise ConfigurationError(f"{source}: invalid deployment: {_problems(exc)}") from None


def _store_path(store: str | Path | None) -> Path:
    return Path(store) if store is not None else setup.store_path()


def _created_at(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat()


def _loaded(id: str, version: int, body: str, created: float) -> Deployment:
    """A stored version as a :class:`Deployment`."""
    try:
        fields = json.loads(body)
        fields.update(id=id, version=version, created_at=_created_at(created))
        return Deployment.model_validate(fields)
    except (ValueError, TypeError, AttributeError) as exc:  # bad JSON, or a newer clew's fields
        problem = _problems(exc) if isinstance(exc, ValidationError) else str(exc)
        raise StoreError(
            f"deployment {id!r} version {version} in the store cannot be read by this clew"
            f" ({problem}); add it again, or upgrade clew"
        ) from None


def add(deployment: dict[str, Any] | Deployment, *, store: str | Path | None = None) -> Deployment:
    """Validate a deployment and store it as the next version of its id.

    Args:
        deployment: its fields (as in a deployment file), or a :class:`Deployment`.
        store: the store file; default: the configured one (``.clew/traces.db``).

    Returns:
        The deployment as stored, with its ``version`` (1 for a new id) and ``created_at``.

    Raises:
        ConfigurationError: the deployment is invalid; the message names every bad field.
        StoreError: the store cannot be written.
    """
    checked = _validated(deployment, "clew.deployments.add()")
    body = checked.model_dump_json(exclude=set(_SET_BY_THE_STORE), exclude_unset=True)
    created = time.time()
    version = stored.add(_store_path(store), checked.id, body, created=created)
    return _loaded(checked.id, version, body, created)


def get(id: str, version: int | None = None, *, store: str | Path | None = None) -> Deployment:
    """A deployment: its latest version, or the given one.

    Raises:
        InvalidRequestError: no deployment with this id, or no such version of it
            (``param="deployment_id"``).
        StoreError: the store cannot be read, or holds a version this clew cannot read.
    """
    path = _store_path(store)
    row = stored.get(path, id, version)
    if row is not None:
        return _loaded(id, row.version, row.body, row.created)
    if version is not None and (latest := stored.get(path, id)) is not None:
        raise InvalidRequestError(
            f"deployment {id!r} has no version {version}; its versions are 1 to {latest.version}",
            param="deployment_id",
            code="unknown_deployment_version",
        )
    raise InvalidRequestError(
        f"unknown deployment {id!r}; add it with `clew deployments add FILE`",
        param="deployment_id",
        code="unknown_deployment",
    )


def list(*, store: str | Path | None = None) -> builtins.list[Deployment]:
    """The latest version of every deployment, by id.

    Raises:
        StoreError: the store cannot be read.
    """
    return [
        _loaded(row.id, row.version, row.body, row.created)
        for row in stored.latest(_store_path(store))
    ]


def load_file(path: str | Path) -> dict[str, Any]:
    """Read one deployment from a YAML or JSON file (JSON when the name ends in ``.json``;
    otherwise YAML, which reads JSON too) and check it.

    Returns:
        The deployment's fields, as read, for :func:`add`.

    Raises:
        ConfigurationError: the file cannot be read or parsed, or is not a valid deployment;
            the message names the file, and the line or the fields at fault.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the deployment file {str(path)!r}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    else:
        fields = _load_yaml(path, text)
    _validated(fields, str(path))
    assert isinstance(fields, dict)
    return fields


def _load_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            f"{path}: reading YAML needs PyYAML (pip install pyyaml); or give the deployment"
            " as a .json file"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{path}: not valid YAML: {problem}{where}") from None
