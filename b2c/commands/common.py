"""Helpers shared by command modules: option parsing that fails with clear messages."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from b2c.errors import CliError

_DURATION = re.compile(r"^(\d+)\s*(s|m|min|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str | None, option: str = "--since") -> datetime | None:
    """`30m`, `1h`, `24h`, `7d` → that long ago; `all` → no bound; an ISO time → itself.

    CliError (exit 2) naming `option` for anything else, and for a span reaching before year 1.
    """
    if value is None or value.lower() == "all":
        return None
    match = _DURATION.match(value.strip().lower())
    if match:
        try:
            return datetime.now(UTC) - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        except OverflowError:
            raise CliError(f"{option} {value} reaches too far back; use 'all' for no limit") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} must look like 30m, 1h, 24h, 7d, 'all' or an ISO time (got {value!r})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def writable_path(path: Path, option: str) -> Path:
    """Fail before any work when `path` cannot be written (its directory is missing or read-only)."""
    directory = path.expanduser().resolve().parent
    if not directory.is_dir():
        raise CliError(f"{option} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise CliError(f"{option} {path}: the directory {directory} is not writable")
    return path


def split_list(value: str | None, allowed: tuple[str, ...] | None = None, what: str = "value") -> list[str]:
    """`a,b` → ["A", "B"] (upper-cased when `allowed` is given), validated against `allowed`."""
    if not value:
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    if allowed is None:
        return items
    upper = [v.upper() for v in items]
    unknown = [v for v in upper if v not in allowed]
    if unknown:
        raise CliError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(a.lower() for a in allowed)}")
    return upper
