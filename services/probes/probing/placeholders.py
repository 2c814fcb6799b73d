"""`${NAME}` placeholders in endpoints and header values, expanded at probe time only.

The registry stores `Authorization: Bearer ${ERP_TOKEN}`; the agent substitutes the value from its own
environment just before connecting, so the secret never reaches the database, events or the UI. Every
substituted value, and every credential found in the expanded endpoint or headers, is collected so
the evidence builder can scrub it from anything the test records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from services.common.masking import is_sensitive_key
from services.probes.probing.faults import MissingVariable

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Secrets shorter than this would scrub ordinary words out of the evidence.
_MIN_SECRET = 4
_SCHEME_PREFIX = re.compile(r"^(Bearer|Basic|Digest|Token|ApiKey)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Expanded:
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    # Values that must not appear in anything recorded: substitutions and credentials.
    secrets: frozenset[str]


def _substitute(
    template: str,
    environ: Mapping[str, str],
    where: str,
    credential: bool,
    found: set[str],
    public: tuple[int, int] = (0, 0),
) -> str:
    """Replace placeholders; values substituted outside the `public` span are collected as secrets."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise MissingVariable(name, where, credential=credential)
        if not public[0] <= match.start() < public[1]:
            found.add(environ[name])
        return environ[name]

    return _PLACEHOLDER.sub(value, template)


def _host_span(template: str) -> tuple[int, int]:
    """Where host[:port] sits in a URL template: placeholders there are addresses, not secrets."""
    start = template.find("://")
    start = 0 if start < 0 else start + 3
    end = len(template)
    for stop in "/?#":
        found = template.find(stop, start)
        if found >= 0:
            end = min(end, found)
    at = template.rfind("@", start, end)
    return (at + 1 if at >= 0 else start), end


def _endpoint_credential_parts(template: str) -> tuple[str, str]:
    """The userinfo and query of a URL template, where a placeholder means a secret."""
    try:
        parts = urlsplit(template)
    except ValueError:
        return "", ""
    userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    return userinfo, parts.query


def credentials_in(endpoint: str, headers: tuple[tuple[str, str], ...]) -> set[str]:
    """Secrets visible in an expanded endpoint (password, secret query values) and sensitive headers."""
    found: set[str] = set()
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        parts = None
    if parts is not None:
        if parts.password:
            found.update({parts.password, unquote(parts.password)})
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if is_sensitive_key(key) or key.lower() in ("key", "sig", "code", "auth"):
                found.add(value)
    for name, value in headers:
        if is_sensitive_key(name):
            found.update({value, _SCHEME_PREFIX.sub("", value)})
    return found


def expand(endpoint: str, headers: tuple[tuple[str, str], ...], environ: Mapping[str, str]) -> Expanded:
    """Substitute every `${NAME}`; MissingVariable names the first unset one and where it is used."""
    substituted: set[str] = set()
    userinfo, query = _endpoint_credential_parts(endpoint)
    secret_endpoint = bool(_PLACEHOLDER.search(userinfo) or _PLACEHOLDER.search(query))
    url = _substitute(endpoint, environ, "the endpoint", secret_endpoint, substituted, _host_span(endpoint))
    # Header placeholders are always treated as secrets: that is what they are for.
    expanded_headers = tuple(
        (name, _substitute(value, environ, f"header {name}", is_sensitive_key(name), substituted))
        for name, value in headers
    )
    secrets = {s for s in substituted | credentials_in(url, expanded_headers) if len(s) >= _MIN_SECRET}
    return Expanded(url, expanded_headers, frozenset(secrets))
