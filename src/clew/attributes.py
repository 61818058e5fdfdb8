"""Every span attribute key clew writes, in one place.

clew's own fields live under ``clew.*``; LLM calls follow the OpenTelemetry GenAI semantic
conventions (``gen_ai.*``). Exporters, the store and the CLI read spans through these names only.
"""

from __future__ import annotations

from typing import Final

INSTRUMENTATION_SCOPE: Final = "clew"  # the instrumentation scope (tracer name) of clew's spans

# --- clew's own fields (seed log fields) -------------------------------------------------
CLEW_INPUTS: Final = "clew.inputs"  # JSON text of the bound arguments
CLEW_OUTPUT: Final = "clew.output"  # JSON text of the return value
CLEW_TAGS: Final = "clew.tags"  # sequence of str
CLEW_METADATA: Final = "clew.metadata"  # JSON text of a dict
CLEW_END_USER_IDENTIFIER: Final = "clew.end_user_identifier"
CLEW_SESSION_ID: Final = "clew.session_id"
CLEW_TARGET: Final = "clew.target"  # JSON text (ground truth)
CLEW_DEPLOYMENT_ID: Final = "clew.deployment_id"
CLEW_DEPTH: Final = "clew.depth"  # 0 for a root
CLEW_EXECUTION_ORDER: Final = "clew.execution_order"  # start order within the trace, from 0
CLEW_INPUTS_OMITTED: Final = "clew.inputs.omitted"  # True when omit rules dropped the inputs
CLEW_OUTPUT_OMITTED: Final = "clew.output.omitted"
# Caller-supplied ids kept verbatim when they do not fit the OpenTelemetry id mapping.
CLEW_TRACE_ID: Final = "clew.trace_id"
CLEW_PARENT_TRACE_ID: Final = "clew.parent_trace_id"
CLEW_ROOT_TRACE_ID: Final = "clew.root_trace_id"
CLEW_SCORES: Final = "clew.scores"
# A score span (a child of the span it scores; see clew.tracer.evaluation)
CLEW_SCORE_NAME: Final = "clew.score.name"
CLEW_SCORE_VALUE: Final = "clew.score.value"  # float; absent when the eval failed
CLEW_SCORE_REASON: Final = "clew.score.reason"
CLEW_SCORE_SOURCE: Final = "clew.score.source"  # "eval", "feedback" or "experiment"
CLEW_SCORE_EVAL: Final = "clew.score.eval"  # the eval function's qualified name
CLEW_USAGE_ESTIMATED: Final = "clew.usage.estimated"
CLEW_COST_ERROR: Final = "clew.cost.error"
# A stream's seconds to its first chunk: gen_ai.response.time_to_first_chunk, also written
# under clew's own name, which the store's records (time_to_first_token) and the Langfuse copy
# read, and which spans written before the convention had the key hold.
CLEW_TIME_TO_FIRST_TOKEN: Final = "clew.time_to_first_token"
# The completion gateway (clew.completion)
CLEW_PROJECT_NAME: Final = "clew.project_name"  # a per-call project (wins over the resource's)
CLEW_PROJECT_UUID: Final = "clew.project_uuid"
CLEW_EXPERIMENT_UUID: Final = "clew.experiment_uuid"
CLEW_EVAL_METRIC_IDS: Final = "clew.eval_metric_ids"  # sequence of int
CLEW_DEPLOYMENT_VERSION: Final = "clew.deployment_version"
CLEW_CACHE_HIT: Final = "clew.cache_hit"
CLEW_COST_SAVED: Final = "clew.cost_saved"  # USD a cache hit saved
CLEW_ATTEMPTS: Final = "clew.attempts"  # upstream requests made (0 for a cache hit)
CLEW_ATTEMPT: Final = "clew.attempt"  # on an attempt span: its number, from 1
CLEW_FALLBACK_INDEX: Final = "clew.fallback_index"  # which model served: 0 = the requested one
CLEW_GATEWAY_KEY: Final = "clew.gateway.key"  # the name of the gateway key a request came with
URL_FULL: Final = "url.full"  # an attempt's URL (never with a key in it)
HTTP_REQUEST_METHOD: Final = "http.request.method"

# --- OpenTelemetry GenAI semantic conventions -------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
# The convention's former name of cache_write: no longer written; read from spans written by
# earlier clew versions (old stores hold it).
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

# gen_ai.provider.name: the convention's well-known value of each provider clew names otherwise
# (the seed's ProviderName, kept where users meet it: the completion API, the log records).
# Providers the convention has no value for are written under clew's name.
GEN_AI_PROVIDER_NAMES: Final = {
    "azure": "azure.ai.openai",
    "vertexai": "gcp.vertex_ai",
    "aws_bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
}

# --- GenAI request parameters and response details (provider instrumentation) ------------
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"  # True for a streamed call, else absent
GEN_AI_REQUEST_REASONING_LEVEL: Final = "gen_ai.request.reasoning.level"  # as sent: "low" ...
GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID: Final = "gen_ai.request.previous_response.id"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"  # a provider-stored prompt template's id
GEN_AI_PROMPT_VERSION: Final = "gen_ai.prompt.version"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"  # seconds
# The OpenAI refinement of the GenAI spans (calls through the openai SDK)
OPENAI_API_TYPE: Final = "openai.api.type"  # chat_completions or responses
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"
OPENAI_KEYS: Final = frozenset(
    {
        OPENAI_API_TYPE,
        OPENAI_REQUEST_SERVICE_TIER,
        OPENAI_RESPONSE_SERVICE_TIER,
        OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
    }
)
"""The refinement's keys: written on OpenAI's own spans only (gen_ai.provider.name openai)."""
CLEW_STREAM_END: Final = "clew.stream.end"  # how a stream's span ended: exhausted / closed / error

# --- The extra conventions: what Arize Phoenix (OpenInference) and Langfuse read ----------
# Written beside clew.* and gen_ai.* unless CLEW_OTEL_CONVENTIONS turns them off; every value
# is derived from clew's own keys (see clew.tracer.conventions).
CLEW_KIND: Final = "clew.kind"  # the kind= a span was given (lower case); absent by default
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"  # the session, on LLM spans
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"  # CHAIN, LLM, TOOL, ...
OPENINFERENCE_PROJECT_NAME: Final = "openinference.project.name"  # a resource attribute
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"
TAG_TAGS: Final = "tag.tags"
METADATA: Final = "metadata"  # JSON text, as clew.metadata
LANGFUSE_OBSERVATION_TYPE: Final = "langfuse.observation.type"  # span, generation, tool, ...
LANGFUSE_TRACE_TAGS: Final = "langfuse.trace.tags"
LANGFUSE_OBSERVATION_METADATA: Final = "langfuse.observation.metadata."  # + a metadata key
LANGFUSE_OBSERVATION_COST_DETAILS: Final = "langfuse.observation.cost_details"  # {"total": USD}
LANGFUSE_OBSERVATION_COMPLETION_START_TIME: Final = "langfuse.observation.completion_start_time"
CONVENTION_KEYS: Final = frozenset(
    {
        OPENINFERENCE_SPAN_KIND,
        INPUT_VALUE,
        INPUT_MIME_TYPE,
        OUTPUT_VALUE,
        OUTPUT_MIME_TYPE,
        USER_ID,
        SESSION_ID,
        TAG_TAGS,
        METADATA,
        LANGFUSE_OBSERVATION_TYPE,
        LANGFUSE_TRACE_TAGS,
        LANGFUSE_OBSERVATION_COST_DETAILS,
        LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
    }
)
"""The extra keys, each a copy of what clew's own keys say (with the keys that start with
LANGFUSE_OBSERVATION_METADATA): clew's records and store leave them out."""
