"""The completion API's request and response, field for field as the seed documents say.

:class:`Completion` is the seed's ``CompletionsSchema`` (000): every field, default and bound.
:class:`CompletionResponse` is the body of seed 002, plus ``trace_id``, ``finish_reason`` and
``tool_calls``. Unknown top-level fields are refused (a typo such as ``llm_input`` must not
pass silently); a message may carry OpenAI-style extras (``name``, ``tool_calls``,
``tool_call_id``) for multi-turn tool use.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = [
    "Completion",
    "CompletionResponse",
    "LLMInputs",
    "Message",
    "ModelParams",
    "ProviderName",
    "Role",
    "ToolCall",
]


class ProviderName(StrEnum):
    """The seed's ``ProviderName``."""

    openai = "openai"
    azure = "azure"
    anthropic = "anthropic"
    anyscale = "anyscale"
    vertexai = "vertexai"
    aws_bedrock = "aws_bedrock"
    openrouter = "openrouter"
    mistral = "mistral"
    litellm = "litellm"
    groq = "groq"
    fireworks = "fireworks"
    cohere = "cohere"


class Role(StrEnum):
    """The seed's ``Role``."""

    user = "user"
    assistant = "assistant"
    system = "system"
    function = "function"
    tool = "tool"


class Message(BaseModel):
    """The seed's ``MessageSchema``: ``role`` (default user) and ``content`` (a string, a list
    of content parts, or None; default ""). OpenAI-style extras are kept."""

    model_config = ConfigDict(extra="allow")

    content: str | list[Any] | None = Field(default="", description="Message content")
    role: Role = Field(default=Role.user, description="Message role")


class ModelParams(BaseModel):
    """The seed's ``ModelParamsSchema``, with its defaults and bounds.

    Only the parameters a caller sets are sent to the provider; the defaults below are the
    seed's, and the providers' own.
    """

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default="", description="Model name")
    temp: float | None = Field(default=1, ge=0, le=1, description="Temperature")
    top_p: float | None = Field(default=1, ge=0, le=1, description="Top p")
    frequency_penalty: float | None = Field(default=0, ge=-2, le=2)
    presence_penalty: float | None = Field(default=0, ge=-2, le=2)
    max_length: int | None = Field(default=None, description="Max length of the output")
    response_format: dict[str, Any] | None = Field(default=None)
    safe_prompt: bool | None = Field(default=None, description="Only used for Mistral")

    def given(self) -> dict[str, Any]:
        """The parameters the caller set (what is sent to the provider)."""
        return {k: getattr(self, k) for k in self.model_fields_set if k != "model"}


class LLMInputs(BaseModel):
    """The seed's ``LLMInputsSchema`` (``llm_configuration``)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="Model name")
    provider: ProviderName | None = Field(default=None, description="Provider name")
    model_params: ModelParams | None = None
    messages: list[Message] | None = None
    history: list[Message] | None = Field(
        default=None, description="Messages prepended to messages (chat history)"
    )
    functions: list[Any] | None = Field(
        default=None, description="Function schemas, in the OpenAI API format"
    )
    function_call: str | dict[str, str] | None = None


class Completion(BaseModel):
    """A completion request: the seed's ``CompletionsSchema``.

    Example:
        >>> Completion(llm_configuration={"provider": "openai", "model": "gpt-4o-mini",
        ...            "messages": [{"content": "Hi"}]}).cache
        True
    """

    model_config = ConfigDict(extra="forbid")

    llm_inputs: dict[str, Any] | None = Field(
        default=None,
        description="Key-value pairs filling the prompt template's {{variables}}",
        validation_alias=AliasChoices("llm_inputs", "inputs"),  # the seed's example says inputs
    )
    llm_configuration: LLMInputs = Field(default_factory=LLMInputs)
    project_name: str | None = "default"
    project_uuid: str | None = None
    experiment_uuid: str | None = None
    parent_trace_id: str | None = None
    root_trace_id: str | None = None
    end_user_identifier: str | None = None
    deployment_id: str | None = None
    eval_metric_ids: list[int] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    target: str | None = None
    trace_id: str | None = None
    trace_name: str | None = None
    provider_api_key: str | None = Field(default=None, repr=False)
    cache: bool = True
    log_omit_inputs: bool = False
    log_omit_outputs: bool = False
    log_omit: bool = False
    log_sample_rate: float | None = Field(default=1, ge=0, le=1)
    inference_id: str | None = Field(default=None, description="Deprecated: same as trace_id")
    name: str | None = Field(default=None, description="Deprecated")
    retry: bool = Field(default=False, description="Deprecated")
    fallback_strategy: list[str] | None = Field(
        default=None, description="Deprecated: the fallback models, tried in order"
    )
    stream: bool = Field(default=False, description="Deprecated: use the streaming call")


class ToolCall(BaseModel):
    """A function the model called, in the OpenAI shape (``arguments`` is JSON text)."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    type: Literal["function"] = "function"
    function: dict[str, str]

    @property
    def name(self) -> str:
        """The function's name."""
        return self.function.get("name", "")

    @property
    def arguments(self) -> Any:
        """The arguments, decoded from JSON (the text when it is not JSON)."""
        text = self.function.get("arguments", "")
        try:
            return json.loads(text)
        except ValueError:
            return text


_last_second: tuple[int, str] = (-1, "")


def timestamp(seconds: float) -> str:
    """Seed 002's timestamp text (``2023-07-24 18:05:17``), in UTC."""
    global _last_second
    second = int(seconds)
    last = _last_second  # one tuple, replaced whole: safe to share between threads
    if last[0] != second:  # one formatting per second of calls
        last = _last_second = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second)))
    return last[1]


class CompletionResponse(BaseModel):
    """What a completion returns: seed 002's body, plus ``trace_id``, ``finish_reason``,
    ``native_finish_reason`` and ``tool_calls``.

    Attributes:
        inference_id: the id of the completion's log (its span's ``trace_id``).
        content: the text; when the model called functions, the JSON text of the calls.
        latency: seconds from the call to its end.
        cost: USD; 0 for a cache hit; None when the price of the model is unknown.
        provider / model: the ones that served (after any fallback).
        finish_reason: ``stop``, ``length``, ``tool_calls``, ``content_filter`` or ``error``;
            ``native_finish_reason`` is the provider's own word.
    """

    inference_id: str
    content: str
    latency: float
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float | None
    model: str
    provider: str
    cache_hit: bool
    status: Literal["success", "error"] = "success"
    error: str | None = None
    start_timestamp: str
    end_timestamp: str
    trace_id: str
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
