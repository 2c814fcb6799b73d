"""What makes two communication errors "the same problem": service, error type and endpoint.

The endpoint key is the sanitized URL without query or fragment, with path segments that are ids
(all digits, or 16+ hex digits and dashes, as UUIDs) replaced by `{id}`, so `/orders/4711` and
`/orders/4712` group together. Migration 002 computes the same key in SQL for older rows.
"""

from __future__ import annotations

import hashlib
import re

_ID_SEGMENT = re.compile(r"/([0-9]+|[0-9a-fA-F-]{16,})(?=/|$)")


def endpoint_key(url: str) -> str:
    return _ID_SEGMENT.sub("/{id}", url.split("#", 1)[0].split("?", 1)[0])


def fingerprint(service_id: str, error_type: str, key: str) -> str:
    """A short stable id of the group, for links and exports."""
    return hashlib.sha256(f"{service_id}|{error_type}|{key}".encode()).hexdigest()[:16]
