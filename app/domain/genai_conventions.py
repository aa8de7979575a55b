"""Which attribute of which LLM instrumentation convention fills each GenAI column, in order.

Three conventions describe model calls on spans. For every column the keys below are tried in
order and the first usable value wins, so a span that carries several conventions (OpenInference
with its GenAI dual-write on, or an application adding its own `gen_ai.*` to an instrumented
span) is read the same way every time:

1. **OpenTelemetry GenAI** (`gen_ai.*`): the current names, then their deprecated spellings.
   https://github.com/open-telemetry/semantic-conventions-genai; emitted as-is by
   `opentelemetry-instrumentation-openai-v2` (instrumentation-genai/ in
   github.com/open-telemetry/opentelemetry-python-contrib, which writes its spans through
   util/opentelemetry-util-genai there).
2. **OpenLLMetry** (Traceloop): up to release 0.54 its instrumentations wrote GenAI names mixed
   with their own: `gen_ai.system`, `gen_ai.usage.prompt_tokens`/`completion_tokens` (before
   0.48), `gen_ai.usage.cache_read_input_tokens`, `llm.request.type`, `llm.usage.total_tokens`;
   0.55 moved to the current GenAI names (plus `gen_ai.usage.total_tokens`). The SDK's
   `@workflow`/`@task`/`@agent`/`@tool` decorators mark spans with `traceloop.span.kind` and
   `traceloop.entity.name`. Source: packages/opentelemetry-semantic-conventions-ai
   (`SpanAttributes`, `LLMRequestTypeValues`, `TraceloopSpanKindValues`, MIGRATION.md) and
   packages/traceloop-sdk/traceloop/sdk/decorators/base.py in github.com/traceloop/openllmetry.
3. **OpenInference** (Arize Phoenix): `llm.model_name`, `llm.provider`, `llm.system`,
   `llm.token_count.*`, `llm.cost.total`, `tool.name` and the required
   `openinference.span.kind`. Source: spec/semantic_conventions.md and
   python/openinference-semantic-conventions (`SpanAttributes`, `OpenInferenceSpanKindValues`,
   `OpenInferenceLLMProviderValues`) in github.com/Arize-ai/openinference. Its own GenAI
   dual-write (openinference-instrumentation `_genai_conversion.py`) is the reference for
   how its span kinds and providers translate into GenAI values below.

GenAI comes first because it is the standard the dashboards are named after and the one the
other two are converging on; within a convention the current name beats the older one.

A model call is told apart from what surrounds it. OpenInference AGENT, CHAIN and similar spans
may repeat the token counts of the model calls below them (smolagents' agent span does), so on
a span whose `openinference.span.kind` is one of `NOT_MODEL_CALL_KINDS` no model, provider,
token or cost is read from any convention; its operation and tool name still are.
"""

from __future__ import annotations

# --- OpenTelemetry GenAI ------------------------------------------------------------------
GENAI_PREFIX = "gen_ai."
GENAI_PROVIDER_NAME = "gen_ai.provider.name"
# "Deprecated, use gen_ai.provider.name instead" (renamed after semconv v1.36.0).
GENAI_SYSTEM = "gen_ai.system"
GENAI_REQUEST_MODEL = "gen_ai.request.model"
GENAI_RESPONSE_MODEL = "gen_ai.response.model"
GENAI_OPERATION = "gen_ai.operation.name"
GENAI_TOOL_NAME = "gen_ai.tool.name"

# --- OpenLLMetry (Traceloop) --------------------------------------------------------------
TRACELOOP_SPAN_KIND = "traceloop.span.kind"
TRACELOOP_ENTITY_NAME = "traceloop.entity.name"
TRACELOOP_REQUEST_TYPE = "llm.request.type"

# --- OpenInference ------------------------------------------------------------------------
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
OPENINFERENCE_PROVIDER = "llm.provider"
OPENINFERENCE_SYSTEM = "llm.system"
OPENINFERENCE_TOOL_NAME = "tool.name"
# Keys whose presence marks an OpenInference LLM span as a completion rather than a chat.
OPENINFERENCE_COMPLETION_PREFIXES = ("llm.prompts.", "llm.choices.")

# A span is looked at only when some key starts with one of these (most spans are not).
SIGNAL_PREFIXES = (GENAI_PREFIX, "llm.", OPENINFERENCE_SPAN_KIND, TRACELOOP_SPAN_KIND)

# --- Precedence, column by column (first usable value wins) -----------------------------------
# The model that is priced and shown: what served the call when known, else what was asked for.
MODEL_KEYS = (
    GENAI_RESPONSE_MODEL,
    GENAI_REQUEST_MODEL,
    "llm.response.model_name",  # OpenInference: the model that answered
    "llm.model_name",  # OpenInference: "the name of the model being used"
    "llm.request.model_name",
    "embedding.model_name",  # OpenInference EMBEDDING spans
)
REQUEST_MODEL_KEYS = (GENAI_REQUEST_MODEL, "llm.request.model_name")
RESPONSE_MODEL_KEYS = (GENAI_RESPONSE_MODEL, "llm.response.model_name")
# Per the GenAI conventions input tokens include cache reads. OpenInference's prompt count does
# too: its OpenAI instrumentation copies usage.prompt_tokens, its Anthropic one adds
# cache_read_input_tokens and cache_creation_input_tokens to input_tokens.
INPUT_TOKENS_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",  # GenAI before semconv 1.27; OpenLLMetry before 0.48
    "llm.token_count.prompt",
)
OUTPUT_TOKENS_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHE_READ_KEYS = (
    # "The number of input tokens served from a provider-managed cache. The value SHOULD be
    # included in gen_ai.usage.input_tokens" (the JS incubating constants mirror it as
    # ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, open-telemetry.github.io/opentelemetry-js).
    "gen_ai.usage.cache_read.input_tokens",
    # OpenLLMetry up to 0.54; also Strands agents, and deprecated in Sentry's relay conventions.
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
# No column of its own: when exactly one of input and output is missing, it is the total minus
# the other (an embedding call reports prompt and total tokens only, so its output is 0).
TOTAL_TOKENS_KEYS = (
    "gen_ai.usage.total_tokens",  # OpenLLMetry 0.55 on
    "llm.usage.total_tokens",  # OpenLLMetry up to 0.54
    "llm.token_count.total",  # OpenInference
)
# Cost is not part of the GenAI conventions: `gen_ai.usage.cost` is set by OpenLIT and read by
# Langfuse as an override; OpenInference defines `llm.cost.total` ("Total cost of the LLM call
# in USD"). All are taken to be US dollars.
CLIENT_COST_KEYS = (
    "gen_ai.usage.cost",
    "gen_ai.usage.cost_usd",
    "gen_ai.usage.total_cost",
    "llm.cost.total",
)

# --- Values translated into GenAI's ---------------------------------------------------------
# OpenInference span kinds whose spans group other work rather than call a model.
NOT_MODEL_CALL_KINDS = frozenset(
    {"AGENT", "CHAIN", "TOOL", "RETRIEVER", "RERANKER", "GUARDRAIL", "EVALUATOR", "PROMPT"}
)
# gen_ai.operation.name for an OpenInference span kind (LLM is "chat" or "text_completion").
OPENINFERENCE_KIND_OPERATIONS = {
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "EMBEDDING": "embeddings",
    "RETRIEVER": "retrieval",
}
# OpenLLMetry's llm.request.type (LLMRequestTypeValues); "unknown" says nothing.
TRACELOOP_REQUEST_TYPE_OPERATIONS = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    "rerank": "rerank",
}
# OpenLLMetry's traceloop.span.kind (TraceloopSpanKindValues); workflow and task have no
# GenAI counterpart.
TRACELOOP_KIND_OPERATIONS = {"tool": "execute_tool", "agent": "invoke_agent"}
TRACELOOP_TOOL_KIND = "tool"
OPENINFERENCE_TOOL_KIND = "TOOL"
OPENINFERENCE_LLM_KIND = "LLM"

# gen_ai.system values that name a provider GenAI now spells otherwise: OpenLLMetry's before
# semantic-conventions-ai 0.5 (its MIGRATION.md lists them) and GenAI's own `az.ai.*`
# ("Replaced by azure.ai.openai"). Matched exactly, so correct values are never touched.
LEGACY_SYSTEM_PROVIDERS = {
    "Anthropic": "anthropic",
    "Cohere": "cohere",
    "MistralAI": "mistral_ai",
    "Ollama": "ollama",
    "Groq": "groq",
    "AlephAlpha": "aleph_alpha",
    "Replicate": "replicate",
    "TogetherAI": "together_ai",
    "Watsonx": "ibm.watsonx.ai",
    "HuggingFace": "hugging_face",
    "Fireworks": "fireworks",
    "Azure": "azure.ai.openai",
    "AWS": "aws.bedrock",
    "Google": "gcp.gen_ai",
    "OpenRouter": "openrouter",
    "Langchain": "langchain",
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
}
# OpenInference llm.provider (the host) → gen_ai.provider.name; lowercased first. A value not
# listed is kept as it is (lowercased): fireworks, together, ollama, ...
OPENINFERENCE_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "cohere": "cohere",
    "mistralai": "mistral_ai",
    "google": "gcp.gen_ai",
    "azure": "azure.ai.inference",
    "aws": "aws.bedrock",
    "xai": "x_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
}
# (llm.provider, llm.system) pairs that name a more precise GenAI provider.
OPENINFERENCE_PROVIDER_PAIRS = {
    ("azure", "openai"): "azure.ai.openai",
    ("google", "vertexai"): "gcp.vertex_ai",
}
# OpenInference llm.system (the model family), used when llm.provider is absent.
OPENINFERENCE_SYSTEMS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "cohere": "cohere",
    "mistralai": "mistral_ai",
    "vertexai": "gcp.vertex_ai",
}


# Every key read above. Decoders keep these even past TELEMETRY_MAX_ATTRIBUTES: OpenInference
# raises the SDK's attribute count limit and writes token counts after the flattened messages,
# so on a long conversation they would be the attributes past the limit.
READ_KEYS = frozenset(
    {
        GENAI_PROVIDER_NAME,
        GENAI_SYSTEM,
        GENAI_OPERATION,
        GENAI_TOOL_NAME,
        TRACELOOP_SPAN_KIND,
        TRACELOOP_ENTITY_NAME,
        TRACELOOP_REQUEST_TYPE,
        OPENINFERENCE_SPAN_KIND,
        OPENINFERENCE_PROVIDER,
        OPENINFERENCE_SYSTEM,
        OPENINFERENCE_TOOL_NAME,
        *MODEL_KEYS,
        *INPUT_TOKENS_KEYS,
        *OUTPUT_TOKENS_KEYS,
        *CACHE_READ_KEYS,
        *TOTAL_TOKENS_KEYS,
        *CLIENT_COST_KEYS,
    }
)


def legacy_system_provider(system: str) -> str:
    """A `gen_ai.system` value as GenAI's provider name spells it today."""
    return LEGACY_SYSTEM_PROVIDERS.get(system, system)


def openinference_provider(provider: str | None, system: str | None) -> str | None:
    """gen_ai.provider.name for OpenInference's `llm.provider` and `llm.system` (either may be
    None): the host decides (Azure, Bedrock and Google serve many model families), the model
    family refines it, and without a host the family stands for it."""
    host = provider.lower() if provider else None
    family = system.lower() if system else None
    if host is not None:
        paired = OPENINFERENCE_PROVIDER_PAIRS.get((host, family or ""))
        return paired or OPENINFERENCE_PROVIDERS.get(host, host)
    if family is not None:
        return OPENINFERENCE_SYSTEMS.get(family, family)
    return None
