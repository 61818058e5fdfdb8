"""Just enough of the protobuf wire format to read a ``google.rpc.Status`` message and a
``google.rpc.RetryInfo`` delay, which OTLP backends send on errors. Reading two fields by hand
spares a dependency on ``googleapis-common-protos``."""

from __future__ import annotations

from collections.abc import Iterator


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """``(field number, value)`` pairs of a message: ints for varints, bytes otherwise.

    Raises:
        ValueError: ``data`` is not a protobuf message.
    """
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            value, pos = data[pos : pos + width], pos + width
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if pos > len(data):
            raise ValueError("truncated field")
        yield number, value


def status_message(data: bytes) -> str | None:
    """The ``message`` (field 2) of a serialized ``google.rpc.Status``, if it is one."""
    try:
        for number, value in fields(data):
            if number == 2 and isinstance(value, bytes):
                return value.decode("utf-8", "replace")
    except ValueError:
        return None
    return None


def retry_delay(data: bytes) -> float | None:
    """Seconds in a serialized ``google.rpc.RetryInfo`` (``retry_delay``, a ``Duration``)."""
    try:
        for number, value in fields(data):
            if number == 1 and isinstance(value, bytes):
                parts = dict(fields(value))
                seconds, nanos = parts.get(1, 0), parts.get(2, 0)
                if isinstance(seconds, int) and isinstance(nanos, int):
                    return max(seconds + nanos / 1e9, 0.0)
    except ValueError:
        return None
    return None
