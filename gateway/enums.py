"""Protobuf enums ⇄ GraphQL enums by name: `SERVICE_TYPE_ERP` ⇄ `ServiceType.ERP`.

Proto enums prefix every value with the enum's name (zero value `*_UNSPECIFIED`); GraphQL enums use
the bare names. Mapping by name keeps one source of truth (the .proto) instead of tables per enum.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

E = TypeVar("E", bound=Enum)


def _prefix(proto_enum: Any) -> str:
    zero: str = proto_enum.Name(0)
    return zero.removesuffix("UNSPECIFIED")


def from_proto(gql_enum: type[E], proto_enum: Any, value: int) -> E | None:
    """The GraphQL member for a proto value; None for UNSPECIFIED or a value this gateway does not know."""
    if value == 0:
        return None
    try:
        name: str = proto_enum.Name(value)
    except ValueError:
        return None
    return gql_enum.__members__.get(name.removeprefix(_prefix(proto_enum)))


def to_proto(proto_enum: Any, member: Enum) -> Any:
    """The proto value (typed by the caller's message field) for a GraphQL member."""
    return proto_enum.Value(_prefix(proto_enum) + member.name)


def mirror(name: str, proto_enum: Any) -> Any:
    """A Python Enum with the proto enum's bare names (UNSPECIFIED left out), for strawberry.enum."""
    prefix = _prefix(proto_enum)
    names = list(proto_enum.keys())
    members = {n.removeprefix(prefix): n.removeprefix(prefix) for n in names if not n.endswith("UNSPECIFIED")}
    return Enum(name, members)
