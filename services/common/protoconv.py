"""Conversions between protobuf and Python values, used by transport modules only: well-known types
(timestamps, structs) and enums.

Proto enums prefix every value with the enum's name and start at `<PREFIX>UNSPECIFIED` = 0
(`SERVICE_TYPE_ERP`); Python enums use the bare names (`ServiceType.ERP`). `ProtoEnum` maps one to
the other by name, so the .proto stays the one table, and a member with no proto value fails when
the module is imported rather than on some request.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from services.common.errors import InvalidArgumentError

E = TypeVar("E", bound=Enum)
V = TypeVar("V", bound=int)
V_co = TypeVar("V_co", bound=int, covariant=True)


class ProtoEnumType(Protocol[V_co]):
    """The part of a generated `*_pb2` enum (`common_pb2.ServiceType`) used here."""

    def items(self) -> Sequence[tuple[str, V_co]]: ...
    def __hash__(self) -> int: ...


def enum_prefix(proto_enum: ProtoEnumType[int]) -> str:
    """`SERVICE_TYPE_` for ServiceType: what precedes UNSPECIFIED in the name of the zero value."""
    zero = next(name for name, number in proto_enum.items() if number == 0)
    return zero.removesuffix("UNSPECIFIED")


@functools.cache
def _bare_names(proto_enum: ProtoEnumType[int]) -> dict[int, str]:
    prefix = enum_prefix(proto_enum)
    return {number: name.removeprefix(prefix) for name, number in proto_enum.items() if number != 0}


def bare_name(proto_enum: ProtoEnumType[int], value: int) -> str:
    """The value's name without the prefix (`ERP`); "" for UNSPECIFIED or a number the enum lacks."""
    return _bare_names(proto_enum).get(value, "")


class ProtoEnum(Generic[E, V]):
    """A Python enum ⇄ a proto enum, by name. `aliases` names the few members whose proto name differs
    (`{"GRPC": "GRPC_HEALTH"}`); `what` is how errors call a value (`"service type"`)."""

    def __init__(
        self, enum: type[E], proto_enum: ProtoEnumType[V], what: str, *, aliases: Mapping[str, str] | None = None
    ) -> None:
        prefix = enum_prefix(proto_enum)
        numbers = dict(proto_enum.items())
        names = aliases or {}
        self.what = what
        self.unspecified = numbers[prefix + "UNSPECIFIED"]
        self._to: dict[E, V] = {member: numbers[prefix + names.get(member.name, member.name)] for member in enum}
        self._from: dict[int, E] = {number: member for member, number in self._to.items()}

    def to_proto(self, member: E | None) -> V:
        """The proto value; UNSPECIFIED for None."""
        return self.unspecified if member is None else self._to[member]

    def get(self, value: int) -> E | None:
        """The member, or None for UNSPECIFIED and for a value this side does not know (what consumers of
        another service's messages want: a newer sender is no error)."""
        return self._from.get(value)

    def from_proto(self, value: int, field: str) -> E | None:
        """None for UNSPECIFIED ("not given"); INVALID_ARGUMENT naming `field` for an unknown value."""
        if value == 0:
            return None
        return self.require(value, field)

    def require(self, value: int, field: str) -> E:
        """Like `from_proto`, but UNSPECIFIED is refused too (a filter value, a value that must be set)."""
        try:
            return self._from[value]
        except KeyError:
            raise InvalidArgumentError(f"{field}: {value} is not a known {self.what}") from None


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
