"""Exceptions a job raises to say how it failed, and how any other exception is classified.

    Exception
    └── JobError                 carries an error category (UPPER_SNAKE_CASE)
        ├── TransientJobError    may succeed when tried again: the service retries it automatically
        └── PermanentJobError    will fail again: never retried automatically

Builtin `ConnectionError`, `TimeoutError` and other `OSError`s count as transient too (a network or a
remote system that did not answer); every other exception is permanent.

What the SDK itself raises when a call to the jobs service fails (`create_job`, `claim`):

    Exception
    └── JobsServiceError             the service refused the call (code: INVALID_ARGUMENT...)
        └── JobsServiceUnavailable   also a ConnectionError: unreachable, try again later
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

_NOT_CATEGORY = re.compile(r"[^A-Z0-9_]+")
MAX_CATEGORY = 64


class JobError(Exception):
    """A job failure with an error category such as `ERP_CONNECTION_FAILED`."""

    transient = False

    def __init__(self, message: str, *, category: str = "") -> None:
        super().__init__(message)
        self.category = category


class TransientJobError(JobError):
    """Trying again later may succeed (a timeout, a remote system down): retried automatically."""

    transient = True


class PermanentJobError(JobError):
    """Trying again will fail the same way (invalid data, a missing mapping): never retried."""


class JobsServiceError(Exception):
    """A call to the jobs service failed; `code` is the gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class JobsServiceUnavailable(JobsServiceError, ConnectionError):
    """The jobs service could not be reached or did not answer in time; the same call may work later."""


@dataclass(frozen=True)
class FailureInfo:
    """What the SDK sends for a failure."""

    message: str
    category: str
    transient: bool
    stack_trace: str


def normalize_category(category: str) -> str:
    """UPPER_SNAKE_CASE of at most 64 characters, which is what the service accepts.

    Done here so a sloppy category (`"erp timeout"`) never gets a failure report refused.
    """
    cleaned = _NOT_CATEGORY.sub("_", category.strip().upper()).strip("_")
    return cleaned[:MAX_CATEGORY]


def _default_category(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "TIMEOUT"
    if isinstance(error, OSError):
        return "CONNECTION_FAILED"
    return "INTERNAL"


def describe_failure(error: BaseException | str, category: str = "", transient: bool | None = None) -> FailureInfo:
    """Message, category, class and stack trace for `handle.fail(...)` and the worker runner."""
    if isinstance(error, str):
        message = error.strip() or "failed without a message"
        return FailureInfo(message, normalize_category(category), bool(transient), "")
    text = str(error).strip()
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if isinstance(error, JobError):
        # The job named its own failure: keep its category, even when it gave none.
        category = category or error.category
        is_transient = error.transient
    else:
        category = category or _default_category(error)
        is_transient = isinstance(error, OSError)  # ConnectionError and TimeoutError are OSErrors
    if transient is not None:
        is_transient = transient
    stack = "".join(traceback.format_exception(error))
    return FailureInfo(message, normalize_category(category), is_transient, stack)
