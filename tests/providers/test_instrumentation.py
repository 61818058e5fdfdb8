"""Instrumentation handles: undo, context manager, idempotence, one client, OTel instrumentors."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from provider_helpers import llm_spans, only_llm_span

import clew.providers
from clew.errors import ConfigurationError, InternalError
from clew.providers import instrument, instrument_anthropic, instrument_openai, wrap_openai_client
from clew.providers import openai as openai_provider
from clew.providers.instrumentors import AnthropicInstrumentor, OpenAIInstrumentor
from clew.testing import SpanCapture, internal_errors_swallowed
from clew.testing.llm_server import FakeLLMServer

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(server: FakeLLMServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.openai_base_url, api_key="sk-x", max_retries=0) as c:
        yield c


def ask(client: OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]


def test_the_handle_undoes_the_instrumentation(client: OpenAI, clew_spans: SpanCapture) -> None:
    handle = instrument_openai()
    ask(client)
    handle.uninstrument()
    ask(client)
    assert len(llm_spans(clew_spans)) == 1
    assert not handle.active
    handle.uninstrument()  # idempotent


def test_the_handle_is_a_context_manager(client: OpenAI, clew_spans: SpanCapture) -> None:
    with instrument_openai() as handle:
        ask(client)
    ask(client)
    assert len(llm_spans(clew_spans)) == 1
    assert "undone" in repr(handle)


def test_instrumenting_twice_gives_one_span_and_the_same_handle(
    client: OpenAI, clew_spans: SpanCapture
) -> None:
    with instrument_openai() as first:
        assert instrument_openai() is first
        ask(client)
    assert len(llm_spans(clew_spans)) == 1


def test_reinstrumenting_after_undo_works(client: OpenAI, clew_spans: SpanCapture) -> None:
    instrument_openai().uninstrument()
    with instrument_openai():
        ask(client)
    assert len(llm_spans(clew_spans)) == 1


def test_one_client_only(server: FakeLLMServer, clew_spans: SpanCapture) -> None:
    with (
        OpenAI(base_url=server.openai_base_url, api_key="sk-x") as traced,
        OpenAI(base_url=server.openai_base_url, api_key="sk-x") as other,
    ):
        assert wrap_openai_client(traced) is traced
        ask(traced)
        ask(other)
        assert len(llm_spans(clew_spans)) == 1
        instrument_openai(traced).uninstrument()
        ask(traced)
    assert len(llm_spans(clew_spans)) == 1


def test_a_client_and_the_classes_together_give_one_span(
    client: OpenAI, clew_spans: SpanCapture
) -> None:
    with instrument_openai(), instrument_openai(client):
        ask(client)
    assert len(llm_spans(clew_spans)) == 1


async def test_an_async_client_alone(server: FakeLLMServer, clew_spans: SpanCapture) -> None:
    async with AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-x") as client:
        with instrument_openai(client):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert len(llm_spans(clew_spans)) == 1


def test_a_wrong_argument_says_what_to_pass() -> None:
    with pytest.raises(ConfigurationError, match="openai client"):
        instrument_openai("not a client")
    with pytest.raises(ConfigurationError, match="anthropic client"):
        instrument_anthropic(object())


def test_instrument_turns_on_every_installed_provider(
    client: OpenAI, clew_spans: SpanCapture
) -> None:
    with instrument() as handle:
        assert handle.name == "openai+anthropic"
        ask(client)
    ask(client)
    assert len(llm_spans(clew_spans)) == 1


def test_existing_clients_are_traced_too(server: FakeLLMServer, clew_spans: SpanCapture) -> None:
    with (
        OpenAI(base_url=server.openai_base_url, api_key="sk-x") as made_before,
        instrument_openai(),
    ):
        ask(made_before)
    assert len(llm_spans(clew_spans)) == 1


def test_azure_is_recognised(server: FakeLLMServer, clew_spans: SpanCapture) -> None:
    with (
        AzureOpenAI(
            azure_endpoint=server.url, api_key="az-key", api_version="2024-06-01", max_retries=0
        ) as client,
        instrument_openai(),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    record = only_llm_span(clew_spans)
    assert record["provider"] == "azure"
    assert record["name"] == "chat gpt-4o-mini"


def test_the_opentelemetry_instrumentors_share_clews_instrumentation(
    client: OpenAI, clew_spans: SpanCapture
) -> None:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    try:
        with instrument_openai():  # both on: still one span per call
            ask(client)
    finally:
        instrumentor.uninstrument()
    ask(client)
    assert len(llm_spans(clew_spans)) == 1
    assert AnthropicInstrumentor().instrumentation_dependencies()


def _break_chat_route(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("bug in clew")

    route = openai_provider.ROUTES["/chat/completions"]
    adapter = openai_provider.SDK.load()[0]
    monkeypatch.setitem(
        adapter.routes,
        "/chat/completions",
        type(route)(route.operation, route.request, broken, broken, route.stream_state),
    )


def test_a_failure_inside_clew_never_reaches_the_call(
    client: OpenAI, clew_spans: SpanCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_chat_route(monkeypatch)
    with internal_errors_swallowed(), instrument_openai():
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        )
    assert reply.choices[0].message.content
    assert chunks
    assert [r["status"] for r in llm_spans(clew_spans)] == ["success", "success"]


def test_under_pytest_a_failure_inside_clew_fails_the_test(
    client: OpenAI, clew_spans: SpanCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_chat_route(monkeypatch)
    with instrument_openai(), pytest.raises(InternalError, match="reading the chat request") as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    del e  # its traceback holds the half-begun call: end its span now, not in another test
    gc.collect()
    assert [r["name"] for r in llm_spans(clew_spans)] == ["chat gpt-4o-mini"]


def test_public_names() -> None:
    assert set(clew.providers.__all__) >= {
        "instrument",
        "instrument_openai",
        "instrument_anthropic",
        "wrap_openai_client",
        "Instrumentation",
        "Usage",
    }
