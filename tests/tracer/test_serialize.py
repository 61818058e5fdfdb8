"""to_json: one bounded, never-raising serializer that keeps secrets in the process."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import io
import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple
from unittest import mock

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clew.tracer import serialize
from clew.tracer.serialize import MAX_DEPTH, MIN_MAX_BYTES, REDACTED, is_secret_name, to_json

# Fake credentials, in the formats the serializer must recognise.
OPENAI_KEY = "sk-proj-Xy7Qa9Lm2Np4Rs6Tu8Vw0Yz1Bc3De5Fg7Hj9Kl"
ANTHROPIC_KEY = "sk-ant-api03-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3-_AAAA"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789"
SLACK_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKl"
GOOGLE_KEY = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
BEARER_TOKEN = "mF_9.B5f-4.1JqM-opaque-token-value"
CREDENTIALS = [
    OPENAI_KEY,
    ANTHROPIC_KEY,
    AWS_KEY_ID,
    GITHUB_TOKEN,
    GITHUB_PAT,
    SLACK_TOKEN,
    GOOGLE_KEY,
    JWT,
]
PLAIN_SECRET = "hunter2-plain-value"  # matches no pattern: only its key can protect it


def _reject_constant(name: str) -> object:
    raise ValueError(f"not JSON: {name}")


def parse(text: str) -> Any:
    """Parse strictly: NaN and Infinity literals are not JSON."""
    return json.loads(text, parse_constant=_reject_constant)


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, list | dict) and value:
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
        depth += 1
    return depth


# --------------------------------------------------------------------------------------------
# Rich values


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Address(pydantic.BaseModel):
    city: str


class User(pydantic.BaseModel):
    name: str
    address: Address
    tags: set[str] = set()


def test_models_dataclasses_and_standard_types_use_pydantic_formats() -> None:
    value = {
        "user": User(name="ada", address=Address(city="London")),
        "point": Point(1, 2),
        "when": datetime.datetime(2024, 5, 6, 7, 8, 9),
        "day": datetime.date(2024, 5, 6),
        "id": uuid.UUID(int=1),
        "price": decimal.Decimal("1.50"),
        "color": Color.RED,
        "raw": b"bytes",
        "set": {3},
        "frozen": frozenset(),
        "pair": (1, "a"),
        "queue": collections.deque([1]),
    }

    assert parse(to_json(value)) == {
        "user": {"name": "ada", "address": {"city": "London"}, "tags": []},
        "point": {"x": 1, "y": 2},
        "when": "2024-05-06T07:08:09",
        "day": "2024-05-06",
        "id": "00000000-0000-0000-0000-000000000001",
        "price": "1.50",
        "color": "red",
        "raw": "bytes",
        "set": [3],
        "frozen": [],
        "pair": [1, "a"],
        "queue": [1],
    }


def test_non_finite_floats_become_strings() -> None:
    assert parse(to_json([math.nan, math.inf, -math.inf, 0.5])) == [
        "NaN",
        "Infinity",
        "-Infinity",
        0.5,
    ]


class FakeArray:
    """Quacks like a numpy array."""

    def __init__(self, size: int) -> None:
        self.size = size

    def tolist(self) -> list[int]:
        return list(range(self.size))

    def __repr__(self) -> str:
        return f"FakeArray(size={self.size})"


def test_numpy_like_objects_become_lists() -> None:
    assert parse(to_json({"a": FakeArray(3)})) == {"a": [0, 1, 2]}


def test_huge_numpy_like_objects_become_their_repr() -> None:
    assert parse(to_json(FakeArray(10**9))) == "FakeArray(size=1000000000)"


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


def test_unknown_objects_become_their_repr() -> None:
    assert parse(to_json({"o": Opaque(), "c": 1j})) == {"o": "Opaque()", "c": "1j"}


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __str__(self) -> str:
        raise RuntimeError("str")


def test_objects_with_broken_repr_and_str_become_a_marker() -> None:
    assert parse(to_json([BrokenRepr()])) == ["<unrepresentable BrokenRepr>"]


@dataclasses.dataclass
class BrokenField:
    x: int

    def __getattribute__(self, name: str) -> Any:
        if name == "x":
            raise RuntimeError("no x")
        return super().__getattribute__(name)


def test_an_object_that_cannot_be_serialized_is_replaced_alone() -> None:
    assert parse(to_json({"ok": 1, "bad": BrokenField(1)})) == {
        "ok": 1,
        "bad": "<unrepresentable BrokenField>",
    }


class HostileDict(dict[str, int]):
    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("iter")

    def items(self) -> Any:
        raise RuntimeError("items")


class HostileList(list[int]):
    def __iter__(self) -> Iterator[int]:
        raise RuntimeError("iter")


class HostileAttributes:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)


@pytest.mark.parametrize(
    "value",
    [
        HostileDict(a=1),
        HostileList([1]),
        [HostileList([1]), {"x": HostileDict(a=1)}],
        HostileAttributes(),
        mock.MagicMock(),
        mock.Mock(),
        Point,
        User,
        json,
        len,
        type,
        Ellipsis,
        memoryview(b"x"),
        {"k": range(3)},
    ],
    ids=repr,
)
def test_hostile_and_odd_objects_give_valid_json(value: object) -> None:
    parse(to_json(value))


def test_container_subclasses_are_read_without_their_overrides() -> None:
    assert parse(to_json([HostileList([1, 2]), HostileDict(a=1)])) == [[1, 2], {"a": 1}]


def test_non_str_dict_keys_become_strings() -> None:
    result = parse(to_json({1: "int", 2.5: "float", None: "none", (1, 2): "tuple"}))

    assert set(result.values()) == {"int", "float", "none", "tuple"}
    assert all(isinstance(key, str) for key in result)


def test_keys_pydantic_core_cannot_write_become_their_repr() -> None:
    result = parse(to_json({frozenset({1}): "a", "b": 2}))

    assert result == {"frozenset({1})": "a", "b": 2}


def test_lone_surrogates_and_non_utf8_bytes_give_encodable_json() -> None:
    text = to_json({"s": "a\ud800b", "b": b"\xff\xfeok"})

    text.encode("utf-8")  # no lone surrogate left
    assert parse(text) == {"s": "a\\ud800b", "b": "\\xff\\xfeok"}


def test_huge_ints_stay_parseable() -> None:
    assert parse(to_json({"n": 10**5000, "m": 7})) == {"n": "<int of 16610 bits>", "m": 7}


def test_big_ints_within_the_parse_limit_are_kept() -> None:
    assert parse(to_json(10**400)) == 10**400


# --------------------------------------------------------------------------------------------
# Iterators, cycles, depth


def _numbers() -> Iterator[int]:
    yield 1
    yield 2


@pytest.mark.parametrize("wrap", [lambda g: g, lambda g: {"g": g}, lambda g: [[g]]])
def test_generators_are_written_as_repr_and_not_consumed(wrap: Any) -> None:
    generator = _numbers()

    text = to_json(wrap(generator))

    assert "<generator object _numbers" in text
    assert list(generator) == [1, 2]


def test_iterators_and_files_are_not_consumed() -> None:
    iterator = iter([1, 2])
    mapped = map(str, [1, 2])
    stream = io.StringIO("line1\nline2\n")

    parse(to_json({"it": iterator, "map": mapped, "file": stream}))

    assert list(iterator) == [1, 2]
    assert list(mapped) == ["1", "2"]
    assert stream.read() == "line1\nline2\n"


def test_an_iterator_field_of_a_model_is_not_consumed() -> None:
    class Holder(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
        items: Any

    generator = _numbers()

    parse(to_json(Holder(items=generator)))

    assert list(generator) == [1, 2]


def test_list_and_dict_cycles_are_marked() -> None:
    items: list[Any] = [1]
    items.append(items)
    mapping: dict[str, Any] = {"a": 1}
    mapping["self"] = mapping

    assert parse(to_json(items)) == [1, "<cycle>"]
    assert parse(to_json(mapping)) == {"a": 1, "self": "<cycle>"}


@dataclasses.dataclass
class Node:
    name: str
    next: Node | None = None


def test_self_referential_objects_are_marked() -> None:
    node = Node("a")
    node.next = node

    assert parse(to_json(node)) == {"name": "a", "next": "<cycle>"}


def test_self_referential_models_are_marked() -> None:
    class Tree(pydantic.BaseModel):
        children: list[Any] = []

    tree = Tree()
    tree.children.append(tree)

    assert parse(to_json(tree)) == {"children": ["<cycle>"]}


def test_shared_but_acyclic_values_are_not_cycles() -> None:
    shared = [1]

    assert parse(to_json([shared, shared, {"a": shared}])) == [[1], [1], {"a": [1]}]


@pytest.mark.parametrize("kind", [list, dict])
def test_deep_nesting_is_cut_at_max_depth(kind: type) -> None:
    value: Any = "leaf"
    for _ in range(10_000):
        value = [value] if kind is list else {"k": value}

    result = parse(to_json(value))

    assert depth_of(result) == MAX_DEPTH
    assert "<max depth>" in json.dumps(result)


def test_nesting_up_to_max_depth_is_kept() -> None:
    value: Any = 1
    for _ in range(MAX_DEPTH):
        value = [value]

    assert parse(to_json(value)) == value


# --------------------------------------------------------------------------------------------
# Truncation

MARKER = "…[clew: truncated, "

BIG_VALUES = {
    "str": "x" * 200_000,
    "bytes": b"y" * 200_000,
    "list": list(range(100_000)),
    "nested str": {"a": ["z" * 200_000]},
    "many dicts": [{"k": i, "v": "text"} for i in range(20_000)],
    "wide dict": {f"key{i}": i for i in range(50_000)},
    "quotes": ['"\\'] * 50_000,
    "multibyte": "é漢🙂" * 50_000,
    "deep and wide": [[list(range(100))] * 100] * 10,
}


@pytest.mark.parametrize("limit", [MIN_MAX_BYTES, 1000, 4096])
@pytest.mark.parametrize("name", list(BIG_VALUES))
def test_oversized_values_become_a_marked_prefix_within_the_bound(name: str, limit: int) -> None:
    text = to_json(BIG_VALUES[name], max_bytes=limit)

    result = parse(text)
    assert size(text) <= limit
    assert isinstance(result, str)
    assert MARKER in result
    assert result.endswith(" bytes in all]")


def test_the_prefix_is_the_start_of_the_full_json() -> None:
    value = {"numbers": list(range(5_000))}

    result = parse(to_json(value, max_bytes=1000))

    prefix = result[: result.index(MARKER)]
    assert json.dumps(value, separators=(",", ":")).startswith(prefix)
    assert len(prefix) > 500


def test_the_marker_gives_the_full_size_when_known() -> None:
    value = {"text": "a" * 10_000}

    result = parse(to_json(value, max_bytes=1000))

    assert result.endswith("…[clew: truncated, 10011 bytes in all]")


def test_values_that_fit_are_not_truncated() -> None:
    value = "a" * 998

    assert parse(to_json(value, max_bytes=1000)) == value


def test_a_bound_below_the_minimum_is_raised_to_it() -> None:
    text = to_json("x" * 1000, max_bytes=1)

    assert MARKER in parse(text)
    assert size(text) <= MIN_MAX_BYTES


def test_huge_values_are_cut_before_serializing_them() -> None:
    values = [b"y" * 100_000_000, "s" * 100_000_000, list(range(10_000_000))]
    values.append({i: i for i in range(1_000_000)})

    started = time.perf_counter()
    results = [to_json(value, max_bytes=1000) for value in values]
    elapsed = time.perf_counter() - started

    assert elapsed < 0.5
    assert all(size(text) <= 1000 for text in results)


# --------------------------------------------------------------------------------------------
# Secret names

SECRET_NAMES = [
    "api_key",
    "apikey",
    "api-key",
    "apiKey",
    "APIKey",
    "OPENAI_API_KEY",
    "openai_api_key",
    "provider_api_key",
    "x-api-key",
    "X-Api-Key",
    "password",
    "db_password",
    "passwd",
    "secret",
    "client_secret",
    "authorization",
    "Authorization",
    "proxy-authorization",
    "access_token",
    "refresh_token",
    "auth_token",
    "bearer_token",
    "id_token",
    "csrftoken",
    "token",
    "private_key",
    "aws_secret_access_key",
    "anthropic_key",
    "cookie",
    "set-cookie",
    "auth",
    "credentials",
]
PUBLIC_NAMES = [
    "max_tokens",
    "input_tokens",
    "tokens",
    "token_count",
    "max_token",
    "eos_token",
    "next_token",
    "secret_santa_list",
    "key",
    "cache_key",
    "public_key",
    "monkey",
    "tokenizer",
    "author",
    "password_hash",
    "api_key_id",
    "api_key2",
    "session_id",
    "prompt",
    "",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


# --------------------------------------------------------------------------------------------
# Redaction


@pytest.mark.parametrize(
    "secret_value",
    [
        PLAIN_SECRET,
        12345,
        1.5,
        None,
        True,
        ["a", {"b": "]}"}],
        {"user": "u", "pass": '"}], {["'},
        {"nested": {"deeper": [1, 2, 3]}},
    ],
    ids=repr,
)
def test_values_of_secret_named_keys_are_redacted_whatever_their_type(secret_value: Any) -> None:
    value = {"a": 1, "api_key": secret_value, "z": "after"}

    assert parse(to_json(value)) == {"a": 1, "api_key": REDACTED, "z": "after"}


def test_secret_named_keys_are_redacted_at_any_depth() -> None:
    value = {
        "request": {
            "headers": [{"Authorization": PLAIN_SECRET, "Accept": "json"}],
            "body": {"password": PLAIN_SECRET, "user": "ada"},
        },
        "provider_api_key": PLAIN_SECRET,
    }

    assert parse(to_json(value)) == {
        "request": {
            "headers": [{"Authorization": REDACTED, "Accept": "json"}],
            "body": {"password": REDACTED, "user": "ada"},
        },
        "provider_api_key": REDACTED,
    }


class Settings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    endpoint: str
    api_key: str
    extra_headers: dict[str, str] = {}


@dataclasses.dataclass
class Client:
    settings: Settings
    client_secret: str


def test_secret_fields_of_models_and_dataclasses_are_redacted() -> None:
    settings = Settings(
        endpoint="https://example.test",
        api_key=PLAIN_SECRET,
        extra_headers={"x-api-key": PLAIN_SECRET},
        cookie=PLAIN_SECRET,
    )

    assert parse(to_json({"client": Client(settings, PLAIN_SECRET)})) == {
        "client": {
            "settings": {
                "endpoint": "https://example.test",
                "api_key": REDACTED,
                "extra_headers": {"x-api-key": REDACTED},
                "cookie": REDACTED,
            },
            "client_secret": REDACTED,
        }
    }


def test_secret_fields_are_redacted_on_the_slow_path_too() -> None:
    holder: dict[str, Any] = {"token": PLAIN_SECRET, "gen": _numbers()}
    holder["self"] = holder

    result = parse(to_json(holder))

    assert result["token"] == REDACTED
    assert result["self"] == "<cycle>"


class Login(NamedTuple):
    user: str
    password: str


class ObjectArray:
    """Like a numpy array of dtype=object."""

    size = 1

    def tolist(self) -> list[dict[str, str]]:
        return [{"api_key": PLAIN_SECRET}]


def test_secret_fields_of_named_tuples_and_object_arrays_are_redacted() -> None:
    assert parse(to_json({"login": Login("ada", PLAIN_SECRET), "rows": ObjectArray()})) == {
        "login": ["ada", REDACTED],
        "rows": [{"api_key": REDACTED}],
    }


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_credentials_are_redacted_inside_any_string(credential: str) -> None:
    value = {
        "whole": credential,
        "inside": f"use {credential} please",
        "after newline": f"line\n{credential}",
        "after tab": f"\t{credential}",
        "after control": f"\x1f{credential}",
        "escaped json": json.dumps({"k": credential}),
        "as key": {credential: 1},
        "list": [credential],
    }

    text = to_json(value)

    assert credential not in text
    assert parse(text) == {
        "whole": REDACTED,
        "inside": f"use {REDACTED} please",
        "after newline": f"line\n{REDACTED}",
        "after tab": f"\t{REDACTED}",
        "after control": f"\x1f{REDACTED}",
        "escaped json": json.dumps({"k": REDACTED}),
        "as key": {REDACTED: 1},
        "list": [REDACTED],
    }


def test_bearer_tokens_keep_their_scheme() -> None:
    value = {"header": f"Bearer {BEARER_TOKEN}", "text": f"send BEARER {BEARER_TOKEN}"}

    assert parse(to_json(value)) == {
        "header": f"Bearer {REDACTED}",
        "text": f"send BEARER {REDACTED}",
    }


@pytest.mark.parametrize(
    "text",
    [
        "task-management-system-overview-and-details",
        "risk-adjusted-return-on-capital-of-the-fund",
        "sk-short",
        "Bearer token",
        "AKIA is not a key",
        "eyJust.eyJoking.here",
        "\x1eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig",  # "\x1e" + "yJ...": not a JWT
        "ghp_short",
        "max_tokens=512, key=value, tokens: 5",
        '{"max_tokens": 5, "key": "k"}',
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert parse(to_json({"v": text})) == {"v": text}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            json.dumps({"password": 'a,"b}', "n": 1}),
            json.dumps({"password": REDACTED, "n": 1}),
        ),
        (
            json.dumps({"outer": json.dumps({"api_key": PLAIN_SECRET})}),
            json.dumps({"outer": json.dumps({"api_key": REDACTED})}),
        ),
        ('he said "api_key": "abc" and left', f'he said "api_key": "{REDACTED}" and left'),
        ("https://api.test/v1?api_key=abc123&q=1", f"https://api.test/v1?api_key={REDACTED}&q=1"),
        ("Config(api_key='abc', retries=3)", f"Config(api_key='{REDACTED}', retries=3)"),
        ("PASSWORD = hunter2", f"PASSWORD = {REDACTED}"),
    ],
)
def test_secret_named_keys_inside_strings_are_redacted(text: str, expected: str) -> None:
    assert parse(to_json({"v": text})) == {"v": expected}


def test_redaction_happens_before_truncation() -> None:
    for offset in range(900, 1000, 7):
        value = {"text": "x" * offset + OPENAI_KEY + "y" * 5_000}

        text = to_json(value, max_bytes=1000)

        assert "Xy7Qa9Lm" not in text  # no visible piece of the key
        assert size(text) <= 1000


def test_a_secret_named_key_cut_by_truncation_shows_no_value() -> None:
    value = {"text": "x" * 950, "password": PLAIN_SECRET * 100}

    text = to_json(value, max_bytes=1000)

    assert "hunter" not in text
    assert size(text) <= 1000


# --------------------------------------------------------------------------------------------
# Properties

NAMES = st.sampled_from(["role", "content", "api_key", "Authorization", "max_tokens", "n", ""])
TEXTS = st.text() | st.sampled_from(CREDENTIALS) | st.builds("{} {}".format, st.text(), NAMES)
JSON_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXTS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(NAMES | st.text(), children, max_size=5)
        | st.tuples(children, children)
    ),
    max_leaves=40,
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_LIKE, limit=st.integers(min_value=0, max_value=3_000))
def test_output_is_always_bounded_valid_json_without_credentials(value: Any, limit: int) -> None:
    text = to_json(value, max_bytes=limit)

    parse(text)
    assert size(text) <= max(limit, MIN_MAX_BYTES)
    for credential in CREDENTIALS:
        assert credential not in text


SAFE_TEXT = st.text(alphabet='bcdfgxyz019 ."\\\n\t\x00é漢')
SAFE_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | SAFE_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(SAFE_TEXT, children),
    max_leaves=30,
)


@settings(deadline=None, max_examples=200)
@given(value=SAFE_JSON)
def test_values_without_secrets_round_trip(value: Any) -> None:
    assert parse(to_json(value, max_bytes=1_000_000)) == value


SECRET_KEYS = st.sampled_from(
    ["api_key", "Authorization", 'x\\"password', "Set-Cookie", "a:b_secret"]
)
ODD_TEXT = st.text(alphabet='\\"\n\x1f{}[]:,ue1b- é', max_size=6)
SECRET_VALUES = st.sampled_from([PLAIN_SECRET, [PLAIN_SECRET], {"k": PLAIN_SECRET, "z": '"}]'}])
WITH_SECRET_KEYS = st.recursive(
    st.none() | st.integers() | ODD_TEXT,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(
            st.tuples(SECRET_KEYS, SECRET_VALUES)
            | st.tuples(ODD_TEXT.filter(lambda name: not is_secret_name(name)), children),
            max_size=4,
        ).map(dict)
    ),
    max_leaves=20,
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=WITH_SECRET_KEYS, as_model=st.booleans(), limit=st.sampled_from([128, 300, 10**6]))
def test_values_under_secret_names_never_appear(value: Any, as_model: bool, limit: int) -> None:
    class Wrapper(pydantic.BaseModel):
        payload: Any

    text = to_json(Wrapper(payload=value) if as_model else value, max_bytes=limit)

    parse(text)
    assert size(text) <= limit
    assert "hunter2" not in text


def test_public_names() -> None:
    assert sorted(serialize.__all__) == [
        "DEFAULT_MAX_BYTES",
        "MAX_DEPTH",
        "MIN_MAX_BYTES",
        "REDACTED",
        "is_secret_name",
        "redact_text",
        "to_json",
    ]


@pytest.mark.parametrize(
    "value",
    [
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "hi"}],
                "finish_reason": None,
            }
        ],
        [{"role": "assistant", "parts": [{"type": "text", "content": 'é ✓ \n "q" \\'}]}],
        [{"role": "assistant", "parts": [{"type": "text", "content": "key sk-" + "a1B2" * 8}]}],
        [{"role": "assistant", "parts": [{"type": "text", "content": "x" * 5000}]}],
        {"n": 3, "ok": True, "none": None, "list": [1, "two"]},
    ],
)
def test_plain_values_give_the_same_text_without_the_look_inside(value: object) -> None:
    assert to_json(value, 1024, plain=True) == to_json(value, 1024)


def test_plain_still_redacts_credentials_in_text() -> None:
    text = to_json([{"content": "use sk-" + "a1B2" * 8}], plain=True)
    assert "a1B2" not in text
    assert json.loads(text) == [{"content": f"use {REDACTED}"}]
