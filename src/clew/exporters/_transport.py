"""One kept-alive HTTP connection that POSTs payloads and classifies every failure.

Built on the standard library's ``http.client`` rather than ``requests``, ``urllib3`` or
``httpx``: it adds no dependency, keeps one connection alive across batches, lets the caller set
the timeout of every request, and lets another thread abort a blocked request (by shutting the
socket down) so the pipeline's shutdown never waits on a hung backend. Retrying is not done
here: every failure becomes a :class:`RetryableExportError` or :class:`PermanentExportError`
and the pipeline decides.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import math
import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

from clew.errors import (
    ConfigurationError,
    PermanentExportError,
    RetryableExportError,
    StaleConnectionError,
)
from clew.exporters._urls import redact_url

COMPRESSIONS = ("none", "gzip", "deflate")
_MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 300


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    Example:
        >>> parse_retry_after("3")
        3.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0)
        5.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        current = time.time() if now is None else now
        return max(when.timestamp() - current, 0.0)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def text_excerpt(body: bytes) -> str:
    """A short, single-line excerpt of a response body for a log line."""
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _default_error_text(content_type: str, body: bytes) -> str:
    return text_excerpt(body)


class HttpTransport:
    """POSTs payloads to one URL; success returns the response body, failure raises.

    Args:
        url: ``http://`` or ``https://`` URL; user info becomes HTTP basic auth.
        headers: sent with every request (never logged).
        compression: ``none``, ``gzip`` or ``deflate``; sets ``Content-Encoding``.
        ssl_context: for ``https``; the system's default trust store when omitted.
        error_text: turns an error response's content type and body into a log-safe message
            (OTLP backends answer with a protobuf ``google.rpc.Status``).

    Raises:
        ConfigurationError: the URL is not an http(s) URL or the compression is unknown.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        compression: str = "none",
        ssl_context: ssl.SSLContext | None = None,
        error_text: Callable[[str, bytes], str] = _default_error_text,
    ) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"bad port in endpoint {redact_url(url)}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"endpoint must be an http:// or https:// URL, got {redact_url(url)!r}"
            )
        if compression not in COMPRESSIONS:
            raise ConfigurationError(
                f"compression must be one of {COMPRESSIONS}, not {compression!r}"
            )
        self.target = redact_url(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {k.lower(): v for k, v in headers.items()}
        if parts.username and "authorization" not in self._headers:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
        self._compression = compression
        if compression != "none":
            self._headers["content-encoding"] = compression
        self._ssl_context = ssl_context
        self._error_text = error_text
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._pid = os.getpid()
        self._busy = False
        self._closed = False
        self._last_payload: bytes | None = None
        self._last_body = b""

    def post(self, payload: bytes, timeout: float) -> bytes:
        """POST ``payload`` (compressed as configured); the response body on 2xx.

        Raises:
            RetryableExportError: connection error, timeout, malformed response, 408, 429, 5xx.
            PermanentExportError: any other status, or a TLS certificate the client rejects.
        """
        body = self._compress(payload)
        conn, reused = self._acquire(timeout)
        try:
            try:
                return self._roundtrip(conn, body, timeout, stale_is_final=not reused)
            except StaleConnectionError as exc:
                # A kept-alive connection the server closed while idle: retry once, at once,
                # on a fresh connection (not a retry of the batch, so not the pipeline's call).
                if self._closed:
                    raise RetryableExportError("aborted") from exc
                return self._roundtrip(conn, body, timeout, stale_is_final=True)
        except RetryableExportError as exc:
            if self._closed:
                raise RetryableExportError(f"request to {self.target} aborted: shut down") from exc
            raise
        finally:
            with self._lock:
                self._busy = False
                if self._closed:
                    conn.close()

    def close(self) -> None:
        """Close the connection; a request blocked on another thread returns at once."""
        with self._lock:
            self._closed = True
            conn = self._conn
            if conn is None:
                return
            if not self._busy:
                conn.close()
                return
            sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def _acquire(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._closed:
                raise RetryableExportError(f"exporter to {self.target} is shut down")
            if self._pid != os.getpid():  # forked: the parent's socket is not ours to use
                if self._conn is not None:
                    self._conn.close()
                self._conn, self._pid = None, os.getpid()
            if self._conn is None:
                self._conn = self._connect(timeout)
            self._busy = True
            return self._conn, self._conn.sock is not None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            context = self._ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _roundtrip(
        self,
        conn: http.client.HTTPConnection,
        body: bytes,
        timeout: float,
        *,
        stale_is_final: bool = False,
    ) -> bytes:
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            data = response.read(_MAX_ERROR_BODY)
            if not response.isclosed():  # body too long to keep the connection usable
                conn.close()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            raise PermanentExportError(f"TLS verification of {self.target} failed: {exc}") from exc
        except TimeoutError as exc:
            conn.close()
            raise RetryableExportError(
                f"no answer from {self.target} within {timeout:.2f}s"
            ) from exc
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            conn.close()
            if not stale_is_final:
                raise StaleConnectionError from exc
            raise RetryableExportError(f"{self.target} dropped the connection ({exc!r})") from exc
        except ConnectionRefusedError as exc:
            conn.close()
            raise RetryableExportError(f"connection refused by {self.target}") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RetryableExportError(
                f"bad exchange with {self.target}: {text_excerpt(repr(exc).encode())}"
            ) from exc
        status = response.status
        if 200 <= status < 300:
            return data
        message = f"HTTP {status} from {self.target}"
        detail = self._error_text(response.getheader("content-type", ""), data)
        if detail:
            message = f"{message}: {detail}"
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(response.getheader("retry-after"))
            raise RetryableExportError(message, retry_after=retry_after)
        if 300 <= status < 400:
            message += " (redirects are not followed: set the endpoint to the final URL)"
        raise PermanentExportError(message)

    def _compress(self, payload: bytes) -> bytes:
        if self._compression == "none":
            return payload
        if payload is not self._last_payload:  # retries of one batch compress it once
            if self._compression == "gzip":
                self._last_body = gzip.compress(payload, compresslevel=6, mtime=0)
            else:
                self._last_body = zlib.compress(payload)
            self._last_payload = payload
        return self._last_body
