"""From a :class:`~clew.gateway.schemas.Completion` to the provider requests it may send.

:func:`plan` does everything that can fail before anything is sent: it validates the
request, loads the deployment, fills the ``{{variables}}``, resolves each model of the fallback
list to a provider, its base URL and key, and builds every provider request. Bad input never
reaches a provider: it is an :class:`~clew.errors.InvalidRequestError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from clew.config import Config, ProviderConfig
from clew.errors import AuthenticationError, CompletionError, InvalidRequestError
from clew.gateway import deployments as _deployments
from clew.gateway import templates
from clew.gateway.schemas import Completion, LLMInputs, Message
from clew.providers.wire import HttpRequest, Prompt, Target, Wire
from clew.providers.wires import GATEWAY_PROVIDERS, wire_for

__all__ = ["Candidate", "Plan", "cache_material", "plan", "validate", "validated"]

_PROVIDERS = frozenset(GATEWAY_PROVIDERS)
# Providers that can authenticate without a key clew holds (a local proxy; Application
# Default Credentials; the AWS credential chain).
_KEY_OPTIONAL = frozenset({"litellm", "vertexai", "aws_bedrock"})
_KEY_VARIABLES = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "anyscale": "ANYSCALE_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "cohere": "CO_API_KEY",
}


@dataclass(slots=True)
class Candidate:
    """One model the call may be served by, with its provider request built.

    ``error`` is set instead of ``request`` when this model cannot be tried (no key): the call
    moves on to the next one without sending anything.
    """

    provider: str
    model: str
    wire: Wire
    target: Target
    prompt: Prompt
    request: HttpRequest | None
    error: CompletionError | None = None


@dataclass(slots=True)
class Plan:
    """What a completion will do."""

    request: Completion
    candidates: list[Candidate]
    deployment_id: str | None = None
    deployment_version: int | None = None
    stream: bool = False
    scope: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> Candidate:
        """The requested model."""
        return self.candidates[0]


def validate(request: Completion | Mapping[str, Any]) -> Completion:
    """The request as a :class:`Completion`.

    Raises:
        InvalidRequestError: a field is invalid; ``param`` names it.
    """
    if isinstance(request, Completion):
        return request
    if not isinstance(request, Mapping):
        raise InvalidRequestError(
            f"a completion request is a clew.Completion or a dict, not {type(request).__name__}"
        )
    return validated(Completion, request)


Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], body: Any) -> Model:
    """``body`` as a ``model``, or an :class:`InvalidRequestError` naming the first bad field
    (an unknown field is named as a parameter the gateway does not support)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        message = f"{where or 'request'}: {first['msg']}"
        if first["type"] == "extra_forbidden":
            message = f"the gateway does not support the parameter {where!r}"
        raise InvalidRequestError(message, param=where) from None


def plan(request: Completion, config: Config, *, stream: bool, scope: str = "") -> Plan:
    """Everything a completion needs before it sends anything.

    Raises:
        InvalidRequestError: the request cannot be served as given.
        AuthenticationError: the requested provider has no key.
    """
    if request.stream and not stream:
        raise InvalidRequestError(
            "stream=true asks for a stream: call clew.stream_completion (or POST"
            " /api/parea/v1/completion/stream) instead",
            param="stream",
        )
    configuration = request.llm_configuration
    fallbacks = list(request.fallback_strategy or ())
    deployment_id = request.deployment_id
    version: int | None = None
    if deployment_id:
        # A deployment's messages are a template: rendered with llm_inputs (even none, so a
        # missing variable is named), then the history is put in front, as it is.
        deployment = _deployments.get(deployment_id, store=config.store_path)
        version = deployment.version
        configuration = templates.merge(deployment, configuration, inputs=request.llm_inputs or {})
        if not request.fallback_strategy:
            fallbacks = list(deployment.fallbacks)
    else:
        # Messages given inline are a template only when llm_inputs are given (a user's text
        # with braces in it is left alone otherwise); the history is never rendered.
        if request.llm_inputs is not None or configuration.history:
            messages = list(configuration.messages or ())
            if request.llm_inputs is not None:
                messages = templates.render(messages, request.llm_inputs)
            configuration = configuration.model_copy(
                update={"messages": [*(configuration.history or ()), *messages], "history": None}
            )
    provider = _provider(configuration)
    model = configuration.model or (
        configuration.model_params.model if configuration.model_params else None
    )
    if not model:
        raise InvalidRequestError(
            "no model: give llm_configuration.model (or a deployment_id)",
            param="llm_configuration.model",
        )
    messages = list(configuration.messages or ())
    if not messages:
        raise InvalidRequestError(
            "no messages: give llm_configuration.messages (or a deployment_id)",
            param="llm_configuration.messages",
        )
    plain = [_plain(m) for m in messages]
    params = configuration.model_params.given() if configuration.model_params else {}
    functions = tuple(_function(f, i) for i, f in enumerate(configuration.functions or ()))
    candidates = []
    for index, (name, model_name) in enumerate(
        [(provider, model), *_fallbacks(fallbacks, provider)]
    ):
        prompt = Prompt(model_name, tuple(plain), params, functions, configuration.function_call)
        key = request.provider_api_key if name == provider else None
        candidates.append(_candidate(name, model_name, prompt, config, key, stream, index))
    first = candidates[0]
    if first.error is not None and len(candidates) == 1:
        raise first.error
    return Plan(request, candidates, deployment_id, version, stream, scope)


def _plain(message: Message) -> dict[str, Any]:
    """A message as the JSON-ready dict the wires read (``role``, ``content``, extras)."""
    extra = message.model_extra
    plain: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if extra:
        plain.update(extra)
    return plain


def _provider(configuration: LLMInputs) -> str:
    provider = configuration.provider
    if provider is None:
        raise InvalidRequestError(
            "no provider: give llm_configuration.provider, one of " + ", ".join(GATEWAY_PROVIDERS),
            param="llm_configuration.provider",
        )
    return provider.value


def _function(function: Any, index: int) -> Mapping[str, Any]:
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(
            "a function is an OpenAI-style schema {'name': ..., 'description': ...,"
            " 'parameters': {...}}",
            param=f"llm_configuration.functions.{index}",
        )
    if function.get("type") == "function" and isinstance(function.get("function"), Mapping):
        inner: Mapping[str, Any] = function["function"]  # a tool given in the newer shape
        return inner
    return function


def _fallbacks(models: list[str], provider: str) -> list[tuple[str, str]]:
    """``provider/model`` or a bare model name (the requested provider's) → pairs."""
    pairs = []
    for index, text in enumerate(models):
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequestError(
                "a fallback is 'provider/model' or a model name", param=f"fallback_strategy.{index}"
            )
        head, sep, tail = text.partition("/")
        if sep and head in _PROVIDERS and tail:
            pairs.append((head, tail))
        else:
            pairs.append((provider, text))  # e.g. openrouter's "meta-llama/llama-3-8b"
    return pairs


def _candidate(
    provider: str,
    model: str,
    prompt: Prompt,
    config: Config,
    key: str | None,
    stream: bool,
    index: int,
) -> Candidate:
    wire = wire_for(provider)
    target = _target(config, provider, key, index)
    request = wire.build(prompt, target, stream)
    error = None
    if target.api_key is None and provider not in _KEY_OPTIONAL:
        variable = _KEY_VARIABLES.get(provider, f"{provider.upper()}_API_KEY")
        error = AuthenticationError(
            f"no API key for {provider}: set {variable} (or CLEW_{provider.upper()}_API_KEY),"
            " or give provider_api_key",
            param="provider_api_key",
            provider=provider,
        )
    return Candidate(provider, model, wire, target, prompt, request, error)


_targets: dict[tuple[int, str], tuple[Config, Target]] = {}


def _target(config: Config, provider: str, key: str | None, index: int) -> Target:
    """Where ``provider`` is and its key: the request's key, else the configuration's.

    The configuration's target is made once per configuration (it is immutable).
    """
    known = _targets.get((id(config), provider))
    if known is None or known[0] is not config:
        known = (config, _configured_target(config, provider, index))
        if len(_targets) > 256:
            _targets.clear()
        _targets[(id(config), provider)] = known
    target = known[1]
    if key is not None:
        target = Target(provider, target.base_url, key, target.options)
    return target


def _configured_target(config: Config, provider: str, index: int) -> Target:
    wire = wire_for(provider)
    settings = config.providers.get(provider) or ProviderConfig()
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    options = {
        name: value
        for name in ("api_version", "project", "location", "region")
        if (value := getattr(settings, name)) is not None
    }
    base_url = settings.base_url or wire.default_base_url(Target(provider, "", None, options))
    if not base_url:
        variable = f"CLEW_{provider.upper()}_BASE_URL"
        raise InvalidRequestError(
            f"{provider} has no default address: set {variable}"
            + (" (or AZURE_OPENAI_ENDPOINT)" if provider == "azure" else "")
            + f" or clew.configure(providers={{'{provider}': {{'base_url': ...}}}})",
            param="llm_configuration.provider" if index == 0 else f"fallback_strategy.{index - 1}",
        )
    return Target(provider, base_url, key, options)


def cache_material(plan: Plan) -> bytes:
    """What the cache keys on: the normalized provider request of the requested model, the
    provider and URL path (never a key), and the caller's scope."""
    first = plan.primary
    # The non-streamed request, so that a stream and a plain call share one entry.
    request = first.wire.build(first.prompt, first.target, False) if plan.stream else first.request
    assert request is not None
    material = {
        "scope": plan.scope,
        "provider": first.provider,
        "url": request.url.split("?", 1)[0],
        "body": request.body,
    }
    return json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
