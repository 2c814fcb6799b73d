"""Conversions between protobuf well-known types and Python values, used by transport modules only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2


def set_timestamp(target: timestamp_pb2.Timestamp, value: datetime | None) -> None:
    """Fill `target` from an aware datetime; leaves it unset for None."""
    if value is not None:
        target.FromDatetime(value.astimezone(UTC))


def to_timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: timestamp_pb2.Timestamp | None) -> datetime | None:
    """An aware UTC datetime, or None for an unset (zero) timestamp."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=UTC)


def to_struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if value:
        struct.update(value)
    return struct


def from_struct(struct: struct_pb2.Struct | None) -> dict[str, Any]:
    """A Struct as plain data; whole numbers come back as ints (a Struct stores every number as a double,
    so `{"attempt": 1}` would otherwise read as `1.0` in logs, parameters and the CLI)."""
    if struct is None:
        return {}
    result: dict[str, Any] = _whole(json_format.MessageToDict(struct))
    return result


def _whole(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value
