"""Secret names: whether a parameter, field, header or dict key name designates a secret.

:func:`is_secret_name` decides by the name's last words, with a cache for the short names
that recur; named tuples and dataclasses get their secret fields looked up once per class.
"""

from __future__ import annotations

import dataclasses
import functools
import re

_WORD_BOUNDARY = re.compile(r"[^0-9A-Za-z]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# fmt: off
# A name ending in one of these words names a secret, whatever comes before.
_ALWAYS_SECRET = (
    "password", "passwords", "passwd", "passphrase", "secret", "secrets", "authorization", "auth",
    "cookie", "cookies", "credential", "credentials", "bearer",
)
# "...key" names a secret only after one of these ("api_key", "privateKey", "OPENAI_KEY"),
# not in "key", "cache_key" or "monkey".
_KEY_QUALIFIERS = (
    "api", "private", "secret", "access", "signing", "encryption", "decryption", "master",
    "session", "client", "auth", "ssh", "license", "service", "account", "subscription", "admin",
    "app", "bot", "hmac", "jwt", "openai", "anthropic", "cohere", "mistral", "groq", "gemini",
    "google", "azure", "aws", "hf", "huggingface", "together", "fireworks", "replicate",
    "pinecone", "deepseek", "xai", "perplexity", "voyage", "openrouter", "langfuse", "langsmith",
    "stripe", "github", "slack",
)
# "...token" names a secret ("token", "access_token", "csrftoken") unless it counts or
# names LLM tokens ("max_token", "eos_token", "next_token" for paging).
_TOKEN_NOT_SECRET = (
    "max", "min", "input", "output", "prompt", "completion", "total", "num", "next", "prev",
    "previous", "page", "continuation", "stop", "eos", "bos", "pad", "unk", "sep", "cls", "mask",
    "special", "start", "end", "first", "last", "new", "cached", "reasoning", "added", "image",
    "audio", "text", "word",
)
# fmt: on
_SECRET_SUFFIXES = (*_ALWAYS_SECRET, "key", "keys", "token")


def is_secret_name(name: str) -> bool:
    """Tell whether a parameter, field, header or dict key name designates a secret.

    The name is split into words at separators and camelCase boundaries and compared
    case-insensitively. It is secret when it *ends* with one of: ``password(s)``, ``passwd``,
    ``passphrase``, ``secret(s)``, ``authorization``, ``auth``, ``cookie(s)``,
    ``credential(s)``, ``bearer``; with ``key(s)`` right after a word such as ``api``,
    ``private``, ``secret``, ``access`` or a provider name; or with ``token`` unless that
    follows a word that counts or names LLM tokens (``max``, ``input``, ``eos``, ``next``...).
    Names ending in something else — ``max_tokens``, ``token_count``, ``secret_santa_list``,
    ``cache_key``, or a trailing digit or separator such as ``api_key2`` — are not secret.

    Args:
        name: The name to check.

    Returns:
        True if values under this name must be replaced by :data:`REDACTED`.

    Example:
        >>> is_secret_name("X-Api-Key"), is_secret_name("refresh_token")
        (True, True)
        >>> is_secret_name("max_tokens"), is_secret_name("secret_santa_list")
        (False, False)
    """
    if type(name) is not str:
        if not isinstance(name, str):
            return False
        name = str.__str__(name)
    return _is_secret_name(name) if len(name) <= 100 else _name_is_secret(name)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(name: str) -> bool:
    return _name_is_secret(name)


def _name_is_secret(name: str) -> bool:
    # The name must end with the secret word itself, so that the scan of JSON text
    # (_KEY_CANDIDATE in redaction.py) finds every key this function calls secret.
    end = name[-1:]
    if not (end.isascii() and end.isalpha()):
        return False
    words = [word.lower() for word in _WORD_BOUNDARY.split(name) if word]
    last = words[-1]
    if last.endswith(_ALWAYS_SECRET):
        return True
    for suffix, qualifiers, secret_when_qualified in (
        ("keys", _KEY_QUALIFIERS, True),
        ("key", _KEY_QUALIFIERS, True),
        ("token", _TOKEN_NOT_SECRET, False),
    ):
        if last.endswith(suffix):
            qualifier = last[: -len(suffix)] or (words[-2] if len(words) > 1 else "")
            qualified = bool(qualifier) and qualifier.endswith(qualifiers)
            return qualified == secret_when_qualified
    return False


@functools.lru_cache(maxsize=1024)
def _secret_positions(cls: type) -> frozenset[int]:
    """Positions of secret-named fields, if ``cls`` is a named tuple."""
    fields = getattr(cls, "_fields", None)
    if not (isinstance(fields, tuple) and all(isinstance(name, str) for name in fields)):
        return frozenset()
    return frozenset(index for index, name in enumerate(fields) if is_secret_name(name))


@functools.lru_cache(maxsize=1024)
def _dataclass_fields(cls: type) -> tuple[tuple[str, ...], bool]:
    names = tuple(field.name for field in dataclasses.fields(cls))
    return names, any(is_secret_name(name) for name in names)
