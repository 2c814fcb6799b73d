"""Struct ⇄ plain data: what parameters, metadata and log context look like after a round trip."""

from __future__ import annotations

from services.common.protoconv import from_struct, to_struct


def test_whole_numbers_come_back_as_ints_and_fractions_stay() -> None:
    """A Struct keeps numbers as doubles; reading one back gives 1, not 1.0, at every depth."""
    data = {"attempt": 1, "ratio": 0.25, "ids": [1, 2.5], "nested": {"items": 40, "flag": True, "name": "x"}}
    assert from_struct(to_struct(data)) == data
    assert isinstance(from_struct(to_struct({"n": 3}))["n"], int)
    assert from_struct(to_struct({"big": 2.0**60}))["big"] == 2.0**60
    assert from_struct(None) == {}
