"""Custom GraphQL scalars, registered with the schema through `SCALARS` (StrawberryConfig.scalar_map)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

MAX_SAFE_INTEGER = 2**53 - 1


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("Long must be a whole number")
    number = int(value)
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        raise ValueError(f"Long must be between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}")
    return number


if TYPE_CHECKING:  # to the type checker a Long is an int; to GraphQL a scalar of its own
    Long = int
else:
    Long = NewType("Long", int)

SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description="A whole number beyond 32 bits (item counts, sequences); exact up to 2^53 - 1; a JSON number",
        serialize=int,
        parse_value=_parse_long,
    )
}
