"""Exit codes and the one exception type commands raise to end with a message (never a traceback)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """The seed's exit codes, so scripts can branch on them."""

    OK = 0  # success / healthy
    WARNING = 1  # warning / degraded
    ERROR = 2  # error / unhealthy, bad input, not found
    UNREACHABLE = 3  # cannot reach the API


class CliError(Exception):
    """Ends the command with `message` on stderr and `code` as exit status."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
