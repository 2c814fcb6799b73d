"""The one place where raw request/response evidence becomes what may be stored, returned or published.

Two layers of masking: `services.common.masking` hides what looks like a secret (authorization
headers, `?token=`, URL passwords, bearer tokens, JWTs, e-mail addresses, JSON keys named like
secrets), and `Redactor` removes every value the agent itself knows to be secret (each expanded
`${NAME}` placeholder, the URL password, sensitive header values) wherever it shows up, even in a
body the server echoed back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from services.common.masking import (
    MASK,
    is_sensitive_key,
    mask_headers,
    mask_text,
    mask_value,
    sanitize_url,
    truncate,
)
from services.probes.domain import ErrorDetails, RetryAttempt, Timing
from services.probes.probing.checks.base import RawEvidence

BODY_SUMMARY_LIMIT = 2048
HEADER_VALUE_LIMIT = 512
MESSAGE_LIMIT = 2000
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A body longer than this many summaries is masked in a window of that size only.
_MASK_WINDOW = 4
_JSON_SECRET_VALUE = re.compile(r'"((?:[^"\\]|\\.){1,100})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')


def _mask_json_value(match: re.Match[str]) -> str:
    return f'"{match[1]}"{match[2]}"{MASK}"' if is_sensitive_key(match[1]) else match[0]


class Redactor:
    """Removes known secret values, then masks whatever else looks like one."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a token is not half-replaced by a shorter secret it contains.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def raw(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        return value

    def text(self, value: str, limit: int = MESSAGE_LIMIT) -> str:
        return truncate(mask_text(self.raw(value)), limit)

    def url(self, value: str) -> str:
        return mask_text(sanitize_url(self.raw(value)))

    def headers(self, pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
        merged: dict[str, str] = {}
        for name, value in pairs:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        masked = mask_headers({name: self.raw(value) for name, value in merged.items()})
        return {name: truncate(value, HEADER_VALUE_LIMIT) for name, value in masked.items()}

    def body(self, data: bytes, limit: int = BODY_SUMMARY_LIMIT) -> str:
        """A readable, masked, truncated summary; JSON is re-serialised with secret-named keys masked.

        Only the first few summary lengths of a large body are masked (what lies beyond is never shown),
        so a 1 MB answer costs what a 8 KB one does; there, JSON values under secret-named keys are
        masked in place instead of by re-serialising a document that was cut off.
        """
        window = limit * _MASK_WINDOW
        if len(data) > window:
            text = _JSON_SECRET_VALUE.sub(_mask_json_value, self.raw(data[:window].decode("utf-8", "replace")))
            return mask_text(text)[:limit] + f"…[truncated {len(data) - limit} bytes]"
        text = self.raw(data.decode("utf-8", "replace"))
        try:
            document = json.loads(text)
        except ValueError:
            pass
        else:
            text = json.dumps(mask_value(document), ensure_ascii=False)
        return truncate(mask_text(text), limit)


def trace_ids(response_headers: Iterable[tuple[str, str]], sent: str) -> tuple[str, str]:
    """(trace id, span id) from the response's W3C traceparent, else from the one we sent."""
    for name, value in response_headers:
        if name.lower() == "traceparent" and (match := _TRACEPARENT.match(value.strip().lower())):
            return match.group(1), match.group(2)
    match = _TRACEPARENT.match(sent)
    return (match.group(1), match.group(2)) if match else ("", "")


def build_details(
    raw: RawEvidence,
    timing: Timing,
    history: list[RetryAttempt],
    max_retries: int,
    correlation_id: str,
    traceparent: str,
    redactor: Redactor,
) -> ErrorDetails:
    """REQ-001 CommunicationErrorDetails of the last attempt, masked."""
    trace_id, span_id = trace_ids(raw.response_headers, traceparent)
    is_http = raw.method in _HTTP_METHODS
    return ErrorDetails(
        http_method=raw.method,
        endpoint_url=redactor.url(raw.url),
        http_status_code=raw.status,
        request_headers=redactor.headers(raw.request_headers),
        request_payload_summary=redactor.body(raw.request_body) if raw.request_body else "",
        request_payload_size_bytes=len(raw.request_body) if is_http else None,
        response_headers=redactor.headers(raw.response_headers),
        response_body_summary=redactor.body(raw.response_body) if raw.response_body else "",
        response_payload_size_bytes=raw.response_size,
        timing=timing,
        retry_attempt=max(0, len(history) - 1),
        max_retries=max_retries,
        retry_history=history,
        correlation_id=correlation_id,
        trace_id=trace_id,
        span_id=span_id,
    )
