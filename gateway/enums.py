"""Protobuf enums ⇄ GraphQL enums by name: `SERVICE_TYPE_ERP` ⇄ `ServiceType.ERP`.

The naming rule (every value prefixed with the enum's name, zero value `*_UNSPECIFIED`) is the one the
services use too (`services.common.protoconv`); mapping by name keeps one source of truth (the .proto)
instead of tables per enum. The gateway is lenient where the services are strict: a value it does not
know (a newer service) reads as null instead of failing the whole response.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from services.common.protoconv import bare_name, enum_prefix

E = TypeVar("E", bound=Enum)


def from_proto(gql_enum: type[E], proto_enum: Any, value: int) -> E | None:
    """The GraphQL member for a proto value; None for UNSPECIFIED or a value this gateway does not know."""
    return gql_enum.__members__.get(bare_name(proto_enum, value))


def to_proto(proto_enum: Any, member: Enum) -> Any:
    """The proto value (typed by the caller's message field) for a GraphQL member."""
    return proto_enum.Value(enum_prefix(proto_enum) + member.name)


def mirror(name: str, proto_enum: Any) -> Any:
    """A Python Enum with the proto enum's bare names (UNSPECIFIED left out), for strawberry.enum."""
    prefix = enum_prefix(proto_enum)
    names = list(proto_enum.keys())
    members = {n.removeprefix(prefix): n.removeprefix(prefix) for n in names if not n.endswith("UNSPECIFIED")}
    return Enum(name, members)
