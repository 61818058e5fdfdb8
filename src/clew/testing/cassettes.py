"""Recorded provider responses (vcrpy cassettes) for replay by the fake LLM server.

The cassettes under ``tests/fixtures/cassettes`` (copied from ``shared/fixtures``, with their
licenses) hold real HTTP exchanges with OpenAI, Azure OpenAI and Anthropic, recorded by
other projects' test suites in vcrpy's YAML format. This module reads them into plain
:class:`Interaction` values with decoded bodies, and matches incoming requests to them
(:class:`CassetteReplayer`), so that
:class:`clew.testing.llm_server.FakeLLMServer` can serve them to the real SDK clients.

Reading a cassette needs PyYAML (``pip install pyyaml``); everything else here is
standard library only.

Example:
    >>> from clew.testing.cassettes import fixtures_dir, load_cassette
    >>> folder = fixtures_dir() / "cassettes" / "otel-contrib"
    >>> [i.route for i in load_cassette(folder / "test_embeddings_with_content.yaml")]
    ['/v1/embeddings']
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clew.config import load_config

__all__ = [
    "FIXTURES_ENV_VAR",
    "CassetteReplayer",
    "Interaction",
    "canonical_route",
    "fixtures_dir",
    "load_cassette",
]

FIXTURES_ENV_VAR = "CLEW_FIXTURES_DIR"
"""Environment variable that overrides where :func:`fixtures_dir` looks."""

# Headers describing the recorded transfer, not the content: the body served on replay is
# decoded and re-framed, so these would lie.
_TRANSFER_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding"})
_GZIP_MAGIC = b"\x1f\x8b"
_AZURE_DEPLOYMENT = re.compile(r"^/openai/deployments/[^/]+(?=/)")
_SSE_EVENT_END = re.compile(rb"(?<=\r\n\r\n)|(?<=\n\n)")


def fixtures_dir() -> Path:
    """Return the directory holding the recorded test fixtures (the cassettes).

    ``$CLEW_FIXTURES_DIR`` wins when set. Otherwise the copy in the repository
    (``tests/fixtures``, so a fresh clone has everything its tests need) is used, then
    ``shared/fixtures`` beside the clone, then relative to the current directory.

    Returns:
        The fixtures directory. It may not exist; callers that need it should check.

    Example:
        >>> (fixtures_dir() / "cassettes" / "INDEX.tsv").is_file()
        True
    """
    override = load_config().fixtures_dir
    if override is not None:
        return override.expanduser().resolve()
    # src/clew/testing/cassettes.py: parents[3] is the root of the clone.
    repo_root = Path(__file__).resolve().parents[3]
    candidates = [
        repo_root / "tests" / "fixtures",
        repo_root / ".." / "shared" / "fixtures",
        Path.cwd() / ".." / "shared" / "fixtures",
        Path.cwd() / "shared" / "fixtures",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return candidates[0].resolve()


def canonical_route(path: str) -> str:
    """Reduce a request path to the provider route it addresses, for matching.

    Drops the query string, collapses repeated slashes, maps Azure OpenAI paths
    (``/openai/deployments/<name>/chat/completions``, ``/openai/v1/...``) onto the public
    ``/v1/...`` route, and adds a missing ``/v1`` prefix (a base URL without it).

    Args:
        path: The request target or URL path, with or without a query string.

    Returns:
        The route, e.g. ``"/v1/chat/completions"``.

    Example:
        >>> canonical_route("//openai/deployments/gpt-4o/chat/completions?api-version=1")
        '/v1/chat/completions'
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    if "//" in path:
        path = re.sub(r"/{2,}", "/", path)
    path = _AZURE_DEPLOYMENT.sub("", path)
    if path.startswith("/openai/"):
        path = path[len("/openai") :]
    if not path.startswith("/v1/"):
        path = "/v1" + (path if path.startswith("/") else "/" + path)
    return path.rstrip("/") or "/"


@dataclass(frozen=True, slots=True)
class Interaction:
    """One recorded request and its response, with bodies decoded.

    Attributes:
        method: The HTTP method, upper case.
        uri: The recorded URL (host names as the source recorded them).
        request_body: The request body as text ("" when there was none).
        status: The response status code.
        response_headers: The response headers as recorded, lower-cased names, minus the
            transfer headers (content-length, transfer-encoding, content-encoding) that no
            longer describe the decoded body.
        response_body: The decoded response body (gzip already undone).
    """

    method: str
    uri: str
    request_body: str
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes

    @property
    def route(self) -> str:
        """The canonical route of the recorded request (see :func:`canonical_route`)."""
        parts = urlsplit(self.uri)
        return canonical_route(parts.path + ("?" + parts.query if parts.query else ""))

    @property
    def is_stream(self) -> bool:
        """Whether the response is a Server-Sent Events stream."""
        return "text/event-stream" in (self.header("content-type") or "")

    def header(self, name: str) -> str | None:
        """Return the first recorded response header called ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.response_headers if key == wanted), None)

    def request_json(self) -> Any:
        """Return the request body parsed as JSON, or None when it is empty or not JSON."""
        return _loads_or_none(self.request_body)

    def response_json(self) -> Any:
        """Return the response body parsed as JSON, or None when it is not JSON (e.g. SSE)."""
        return _loads_or_none(self.response_body)

    def sse_events(self) -> list[bytes]:
        """Split an SSE response body into its events, each with its blank-line terminator."""
        return [event for event in _SSE_EVENT_END.split(self.response_body) if event.strip()]


def load_cassette(path: str | os.PathLike[str]) -> list[Interaction]:
    """Read a vcrpy YAML cassette into interactions with decoded bodies.

    Both vcrpy layouts are understood: the current one (``response.body.string``,
    ``response.status.code``) and the older httpx one (``response.content``,
    ``response.status_code``). Bodies may be plain text, pretty-printed JSON, gzip bytes
    stored as a base64 ``!!binary`` scalar, or a ``parsed_body`` mapping (pydantic-ai's
    recorder); they come back decoded. Binary bodies (Bedrock's event streams) stay bytes.

    Args:
        path: The cassette file.

    Returns:
        The interactions, in recorded order.

    Raises:
        ImportError: PyYAML is not installed.
        ValueError: The file is not a vcrpy cassette.

    Example:
        >>> interactions = load_cassette("test_chat.yaml")  # doctest: +SKIP
        >>> interactions[0].status
        200
    """
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading cassettes needs PyYAML: install it with `pip install pyyaml`."
        ) from exc
    with open(path, "rb") as stream:
        document = yaml.load(stream, Loader=_loader(yaml))  # a safe loader either way
    if isinstance(document, Mapping) and "request" in document and "response" in document:
        document = {"interactions": [document]}  # dd-trace-py's one-interaction JSON files
    if not isinstance(document, Mapping) or not isinstance(document.get("interactions"), list):
        raise ValueError(f"{os.fspath(path)} is not a vcrpy cassette: no `interactions` list")
    return [_interaction(entry, path) for entry in document["interactions"]]


_LOADERS: list[Any] = []


def _loader(yaml: Any) -> Any:
    """A safe YAML loader that also reads the one Python tag some recorders leave behind:
    multidict's case-insensitive header name (``!!python/object/apply:multidict...istr``),
    as the plain string it holds."""
    if not _LOADERS:
        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster

        class Loader(base):  # type: ignore[misc,valid-type]  # yaml's loaders are untyped
            pass

        def istr(loader: Any, node: Any) -> str:
            values = loader.construct_sequence(node)
            return str(values[0]) if values else ""

        Loader.add_constructor(
            "tag:yaml.org,2002:python/object/apply:multidict._multidict.istr", istr
        )
        _LOADERS.append(Loader)
    return _LOADERS[0]


def _interaction(entry: Any, path: str | os.PathLike[str]) -> Interaction:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{os.fspath(path)}: an interaction is not a mapping")
    request, response = entry.get("request") or {}, entry.get("response") or {}
    headers = _headers(response.get("headers"))
    encoding = next((value for key, value in headers if key == "content-encoding"), None)
    body = _decode(_raw_body(response), encoding)
    kept = tuple((key, value) for key, value in headers if key not in _TRANSFER_HEADERS)
    status = response.get("status")
    code = status.get("code") if isinstance(status, Mapping) else response.get("status_code")
    if code is None and isinstance(status, int):
        code = status
    request_body = _decode(_raw_body(request), None).decode("utf-8", errors="replace")
    return Interaction(
        method=str(request.get("method", "GET")).upper(),
        uri=str(request.get("uri", request.get("url", ""))),
        request_body=request_body,
        status=int(code if code is not None else 200),
        response_headers=kept,
        response_body=body,
    )


def _raw_body(message: Mapping[str, Any]) -> str | bytes | None:
    if "parsed_body" in message:  # pydantic-ai's recorder: the JSON body as a YAML mapping
        return json.dumps(message["parsed_body"])
    body = message.get("body", message.get("content"))
    if isinstance(body, Mapping):
        body = body.get("string")
    if body is None or isinstance(body, str | bytes):
        return body
    return json.dumps(body)


def _headers(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, Mapping):
        return []
    pairs: list[tuple[str, str]] = []
    for name, values in raw.items():
        for value in values if isinstance(values, list) else [values]:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            pairs.append((str(name).lower(), text))
    return pairs


def _decode(body: str | bytes | None, encoding: str | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if body.startswith(_GZIP_MAGIC):
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return body
    return body


def _loads_or_none(text: str | bytes) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class CassetteReplayer:
    """Hands out recorded interactions to incoming requests; safe to share across threads.

    A request matches an unplayed interaction with the same method and canonical route
    (see :func:`canonical_route`), in recorded order. When several are waiting on that
    route, the first one whose recorded ``model`` and ``stream`` flag equal the request's
    is preferred, so one replayer can serve several cassettes; the request body is not
    otherwise compared, because the SDK version replaying differs from the recording one.

    Args:
        interactions: The interactions to serve.
        allow_repeats: Once every interaction on a route has been played, serve the last
            one again instead of reporting no match.
    """

    def __init__(self, interactions: Iterable[Interaction], *, allow_repeats: bool = False) -> None:
        self._interactions = list(interactions)
        self._played = [False] * len(self._interactions)
        self._allow_repeats = allow_repeats
        self._lock = threading.Lock()

    @property
    def interactions(self) -> list[Interaction]:
        """Every interaction this replayer serves, in order."""
        return list(self._interactions)

    @property
    def unplayed(self) -> list[Interaction]:
        """The interactions not served yet."""
        with self._lock:
            return [i for i, done in zip(self._interactions, self._played, strict=True) if not done]

    def match(self, method: str, path: str, body: Any = None) -> Interaction | None:
        """Return the interaction to answer a request with, marking it played.

        Args:
            method: The request's HTTP method.
            path: The request target (query string allowed).
            body: The request's parsed JSON body, if any.

        Returns:
            The interaction, or None when nothing recorded matches.
        """
        route, method = canonical_route(path), method.upper()
        key = _request_key(body)
        with self._lock:
            waiting = [
                n
                for n, interaction in enumerate(self._interactions)
                if not self._played[n]
                and interaction.method == method
                and interaction.route == route
            ]
            if waiting:
                chosen = next(
                    (
                        n
                        for n in waiting
                        if _request_key(self._interactions[n].request_json()) == key
                    ),
                    waiting[0],
                )
                self._played[chosen] = True
                return self._interactions[chosen]
            if self._allow_repeats:
                played = [i for i in self._interactions if i.method == method and i.route == route]
                return played[-1] if played else None
        return None


def _request_key(body: Any) -> tuple[Any, bool]:
    if not isinstance(body, Mapping):
        return (None, False)
    return (body.get("model"), bool(body.get("stream")))
