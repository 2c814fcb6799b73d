"""Checks of a decoded GraphQL request, shared by the HTTP endpoint and the websocket."""

from __future__ import annotations


def has_lone_surrogate(value: object) -> bool:
    """True when a decoded JSON value holds a string that is not valid Unicode (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def check_operation_payload(data: object) -> str | None:
    """Why a decoded GraphQL request (HTTP body or websocket `subscribe` payload) is bad input, or None."""
    if isinstance(data, list):
        return "batched requests are not supported: send one operation per request"
    if not isinstance(data, dict):
        return "the request must be a JSON object with 'query' (and optionally 'variables', 'operationName')"
    if not isinstance(data.get("query"), str):
        return "'query' must be a string"
    if not isinstance(data.get("variables"), dict | None):
        return "'variables' must be an object"
    if not isinstance(data.get("operationName"), str | None):
        return "'operationName' must be a string"
    if has_lone_surrogate(data):
        return "the request contains text that is not valid Unicode (a lone surrogate)"
    return None
