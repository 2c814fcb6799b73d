"""HTTP answers → CommunicationErrorType: status codes, token expiry, body and JSON checks.

Pure functions over what the server sent; `classify.py` handles everything that is not an answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from services.probes.domain import Classification, ErrorType
from services.probes.probing.classify import make

E = ErrorType

# Status → type for answers that are not expected. 401 is refined into TOKEN_EXPIRED below.
_STATUS_TYPES: dict[int, ErrorType] = {
    400: E.SERIALIZATION_FAILED,  # the server could not read what we sent
    401: E.AUTHENTICATION_FAILED,
    403: E.PERMISSION_DENIED,
    407: E.AUTHENTICATION_FAILED,  # a proxy wants credentials
    408: E.REQUEST_TIMEOUT,
    413: E.PAYLOAD_TOO_LARGE,
    414: E.PAYLOAD_TOO_LARGE,
    415: E.SERIALIZATION_FAILED,
    422: E.SCHEMA_MISMATCH,
    429: E.RATE_LIMITED,
    502: E.SERVICE_UNAVAILABLE,
    503: E.SERVICE_UNAVAILABLE,
    504: E.SERVICE_UNAVAILABLE,
}
_STATUS_WORDS: dict[ErrorType, str] = {
    E.AUTHENTICATION_FAILED: "the server rejected the credentials",
    E.TOKEN_EXPIRED: "the access token has expired",
    E.PERMISSION_DENIED: "the credentials are valid but not allowed to access this resource",
    E.RATE_LIMITED: "the server is rate limiting this client",
    E.SERVICE_UNAVAILABLE: "the service or its gateway is unavailable",
    E.PAYLOAD_TOO_LARGE: "the server refused the request size",
    E.SCHEMA_MISMATCH: "the server could not process the request content",
    E.SERIALIZATION_FAILED: "the server could not read the request",
    E.REQUEST_TIMEOUT: "the server timed out waiting for the request",
}
_EXPIRED_TOKEN = re.compile(
    r"(token[^.\n]{0,40}expired|expired[^.\n]{0,20}token|jwt expired|token_expired|session[^.\n]{0,20}expired)",
    re.IGNORECASE,
)
_JSON_CONTENT = re.compile(r"^application/([a-z0-9.+-]*\+)?json\b", re.IGNORECASE)
_CHARSET = re.compile(r"charset=\"?([A-Za-z0-9._-]+)", re.IGNORECASE)


def is_expected(status: int, expected: tuple[int, ...]) -> bool:
    """The configured statuses, or any 2xx/3xx when none are configured."""
    return status in expected if expected else 200 <= status < 400


def classify_status(
    status: int, reason: str, headers: Mapping[str, str], body: str, expected: tuple[int, ...] = ()
) -> Classification | None:
    """None when `status` is expected; otherwise what it means. `headers` have lower-case names."""
    if is_expected(status, expected):
        return None
    code = f"HTTP_{status}"
    kind = _STATUS_TYPES.get(status)
    if kind is E.AUTHENTICATION_FAILED and status == 401 and _token_expired(headers, body):
        kind = E.TOKEN_EXPIRED
    if kind is None:
        if status >= 500:
            # A server-side fault that is not an availability problem (500, 501, 505...).
            return make(E.UNKNOWN, code, f"HTTP {status} {reason}: the server failed to handle the request".strip())
        wanted = ", ".join(map(str, expected)) if expected else "2xx or 3xx"
        return make(E.HTTP_PROTOCOL_ERROR, code, f"HTTP {status} {reason}; expected {wanted}".replace("  ", " "))
    message = f"HTTP {status} {reason}: {_STATUS_WORDS.get(kind, kind.value.lower())}".replace("  ", " ")
    retry_after = headers.get("retry-after", "")
    if retry_after and kind in (E.RATE_LIMITED, E.SERVICE_UNAVAILABLE):
        message += f" (Retry-After: {retry_after[:40]})"
    return make(kind, code, message)


def _token_expired(headers: Mapping[str, str], body: str) -> bool:
    challenge = headers.get("www-authenticate", "")
    return bool(_EXPIRED_TOKEN.search(challenge) or _EXPIRED_TOKEN.search(body[:4096]))


def declared_charset(headers: Mapping[str, str]) -> str:
    match = _CHARSET.search(headers.get("content-type", ""))
    return match.group(1).lower() if match else ""


def decode_body(body: bytes, headers: Mapping[str, str]) -> tuple[str, Classification | None]:
    """The body as text, and an ENCODING_ERROR when it does not decode in its declared charset."""
    charset = declared_charset(headers) or "utf-8"
    try:
        return body.decode(charset), None
    except LookupError:
        return body.decode("utf-8", "replace"), make(
            E.ENCODING_ERROR, "UNKNOWN_CHARSET", f"the response declares an unknown charset {charset!r}"
        )
    except UnicodeDecodeError as error:
        text = body.decode(charset, "replace")
        message = f"the response body is not valid {charset} (byte {error.start} of {len(body)})"
        # Only an error when the server promised text in that charset; undeclared bytes are just data.
        return text, make(E.ENCODING_ERROR, "INVALID_CHARSET", message) if declared_charset(headers) else None


def is_json(headers: Mapping[str, str]) -> bool:
    return bool(_JSON_CONTENT.match(headers.get("content-type", "")))


def parse_json(text: str) -> tuple[Any, Classification | None]:
    """The decoded document, or DESERIALIZATION_FAILED naming where it broke."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, make(
            E.DESERIALIZATION_FAILED,
            "INVALID_JSON",
            f"the response says it is JSON but does not parse: {error.msg} at line {error.lineno} column {error.colno}",
        )


def check_body(text: str, must_contain: str) -> Classification | None:
    """SCHEMA_MISMATCH when the body lacks the text the probe expects."""
    if must_contain and must_contain not in text:
        shown = must_contain if len(must_contain) <= 60 else must_contain[:60] + "…"
        return make(E.SCHEMA_MISMATCH, "BODY_MISMATCH", f"the response body does not contain {shown!r}")
    return None


# Elasticsearch /_cluster/health: green passes, yellow passes degraded, red fails.
ES_STATUS = {"green": "pass", "yellow": "degraded", "red": "fail"}


def classify_cluster_health(document: Any) -> tuple[str, Classification | None]:
    """('pass'|'degraded'|'fail', failure) from a decoded /_cluster/health answer."""
    status = document.get("status") if isinstance(document, dict) else None
    if status not in ES_STATUS:
        return "fail", make(
            E.SCHEMA_MISMATCH, "ES_NO_STATUS", "the /_cluster/health answer has no green/yellow/red status field"
        )
    verdict = ES_STATUS[status]
    if verdict == "fail":
        unassigned = document.get("unassigned_shards", "?")
        return verdict, make(
            E.SERVICE_UNAVAILABLE,
            "ES_RED",
            f"Elasticsearch cluster health is red: primary shards are unassigned ({unassigned} unassigned shards)",
            transient=False,
        )
    return verdict, None
