"""Validation of connected-service definitions: one set of rules for the config file and the API.

`define_service` is the only way outside input becomes a `ServiceDefinition`. It checks field by
field and raises `InvalidFieldError` naming the first bad field with its API name (`endpoint`,
`probe.headers`); the config loader translates those names into file paths.

The small `check_*` helpers raise `ValueError(reason)` so pydantic validators can use them too.
Error messages never repeat an endpoint: it may hold credentials.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import partial
from typing import TypeVar
from urllib.parse import urlsplit

from services.common.masking import escape_control
from services.health.domain import (
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_INTERVAL_SECONDS,
    MIN_INTERVAL_SECONDS,
    PLACEHOLDER,
    InvalidFieldError,
    ProbeKind,
    ProbeOptions,
    ServiceDefinition,
    ServiceType,
    Thresholds,
)

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Canonical and 32-hex-digit forms; a slug of this shape would be ambiguous with an id.
UUID_FORM = re.compile(r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$", re.I)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")
_BROKEN_PLACEHOLDER = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*\})")
# `$NAME` as a shell would write it: we expand only `${NAME}`, so this would be sent literally.
_SHELL_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The probe inferred from an endpoint's scheme when none is given.
PROBE_FOR_SCHEME: dict[str, ProbeKind] = {
    "http": ProbeKind.HTTP,
    "https": ProbeKind.HTTP,
    "tcp": ProbeKind.TCP,
    "postgres": ProbeKind.POSTGRES,
    "postgresql": ProbeKind.POSTGRES,
    "redis": ProbeKind.REDIS,
    "rediss": ProbeKind.REDIS,
    "grpc": ProbeKind.GRPC,
}
# Schemes each probe understands. A TCP probe only needs host and port, so any scheme will do.
SCHEMES_FOR_PROBE: dict[ProbeKind, frozenset[str]] = {
    ProbeKind.HTTP: frozenset({"http", "https"}),
    ProbeKind.ELASTICSEARCH: frozenset({"http", "https"}),
    ProbeKind.TCP: frozenset(PROBE_FOR_SCHEME),
    ProbeKind.POSTGRES: frozenset({"postgres", "postgresql"}),
    ProbeKind.REDIS: frozenset({"redis", "rediss"}),
    ProbeKind.GRPC: frozenset({"grpc"}),
}
# Where a TCP probe connects when the endpoint names no port.
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgres": 5432, "postgresql": 5432, "redis": 6379, "rediss": 6379}
_HTTP_LIKE = frozenset({ProbeKind.HTTP, ProbeKind.ELASTICSEARCH})
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "OPTIONS")

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_ENDPOINT = 2000
MAX_LABELS = 50
MAX_LABEL_VALUE = 200
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4000
MAX_TIMEOUT_SECONDS = 300.0
MAX_RETRIES = 10


def _shown(value: str, limit: int = 60) -> str:
    return repr(escape_control(value[:limit]))


def check_placeholders(value: str) -> str:
    """Reject `${` that does not open a well-formed `${NAME}` reference."""
    if _BROKEN_PLACEHOLDER.search(value):
        raise ValueError("malformed placeholder; write ${NAME} with letters, digits and '_'")
    return value


def check_url(value: str, schemes: frozenset[str] | tuple[str, ...], what: str = "URL") -> str:
    """A URL with one of `schemes` and a host; `${NAME}` placeholders may stand for any part but the scheme."""
    if not value:
        raise ValueError(f"must be a {what}")
    if len(value) > MAX_ENDPOINT:
        raise ValueError(f"is longer than {MAX_ENDPOINT} characters")
    if _CONTROL.search(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    check_placeholders(value)
    # Validate the shape with placeholders filled in; "1" is a valid host, port, user and password.
    parts = urlsplit(PLACEHOLDER.sub("1", value))
    allowed = ", ".join(f"{s}://" for s in sorted(schemes))
    if "://" not in value or not parts.scheme:
        raise ValueError(f"must be a {what} starting with one of {allowed}")
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ValueError(f"scheme {scheme + '://'!r} is not supported here; use one of {allowed}")
    try:
        parts.port  # noqa: B018 - the property raises for a port out of range or not a number
    except ValueError:
        raise ValueError("has an invalid port") from None
    if not parts.hostname:
        raise ValueError(f"must be a {what} with a host, e.g. {scheme}://host.example:1234")
    return value


def check_endpoint(value: str, probe: ProbeKind | None) -> tuple[str, ProbeKind]:
    """The endpoint and the probe to use: the given one, or the one its scheme implies."""
    schemes = SCHEMES_FOR_PROBE[probe] if probe else frozenset(PROBE_FOR_SCHEME)
    check_url(value, schemes)
    scheme = value.split("://", 1)[0].lower()
    kind = probe or PROBE_FOR_SCHEME[scheme]
    if kind is ProbeKind.TCP and urlsplit(PLACEHOLDER.sub("1", value)).port is None and scheme not in _DEFAULT_PORTS:
        raise ValueError(f"a TCP probe needs a port, e.g. {scheme}://host.example:5672")
    return value, kind


def check_slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError(
            "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit "
            f"(got {_shown(value)})"
        )
    if UUID_FORM.match(value):
        raise ValueError("must not look like a service id (a UUID)")
    return value


def check_text(value: str, limit: int, *, multiline: bool = False) -> str:
    """Trimmed text of at most `limit` characters; line breaks only where `multiline`."""
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"is longer than {limit} characters")
    printable = value.replace("\n", "").replace("\t", "") if multiline else value
    if _CONTROL.search(printable):
        raise ValueError(
            "must not contain line breaks or control characters"
            if not multiline
            else "must not contain control characters"
        )
    return value


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels (got {len(labels)})")
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"label {_shown(key)} must be 1-63 letters, digits, '_', '.', '/' or '-'")
        if len(value) > MAX_LABEL_VALUE or _CONTROL.search(value):
            raise ValueError(f"label {key!r}: value must be at most {MAX_LABEL_VALUE} printable characters")
    return dict(labels)


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are HTTP tokens; values one line each (a line break would smuggle a header)."""
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"at most {MAX_HEADERS} headers (got {len(headers)})")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{_shown(name)} is not a valid header name")
        if _CONTROL.search(value.replace("\t", "")):
            raise ValueError(f"header {name!r}: value must not contain line breaks or control characters")
        if len(value) > MAX_HEADER_VALUE:
            raise ValueError(f"header {name!r}: value is longer than {MAX_HEADER_VALUE} characters")
        try:
            check_placeholders(value)
        except ValueError as error:
            raise ValueError(f"header {name!r}: {error}") from None
        if shell := _SHELL_VARIABLE.search(value):
            variable = shell.group(1)
            raise ValueError(
                f"header {name!r}: ${variable} would be sent literally; write ${{{variable}}} "
                "to use the environment variable"
            )
    return dict(headers)


def check_interval(value: int | None) -> int:
    if value is None or value == 0:
        return DEFAULT_INTERVAL_SECONDS
    if not MIN_INTERVAL_SECONDS <= value <= MAX_INTERVAL_SECONDS:
        raise ValueError(f"must be between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS} seconds (got {value})")
    return value


def parse_enum(kind: type[E], value: object, what: str) -> E:
    """An enum member from its value in any case; lists the accepted values when it is not one."""
    if isinstance(value, kind):
        return value
    text = str(value or "").strip()
    for member in kind:
        if member.value.lower() == text.lower():
            return member
    accepted = ", ".join(m.value for m in kind)
    if not text:
        raise ValueError(f"is required: one of {accepted}")
    raise ValueError(f"{_shown(text)} is not a {what}; use one of {accepted}")


def _field(name: str, check: Callable[[], T]) -> T:
    """Run one check; a ValueError becomes InvalidFieldError naming the field."""
    try:
        return check()
    except ValueError as error:
        raise InvalidFieldError(name, str(error)) from None


def check_thresholds(t: Thresholds) -> Thresholds:
    """The thresholds, or InvalidFieldError naming the first bad one (`thresholds.cpu_percent`)."""
    return _check_thresholds(t)


def _check_thresholds(t: Thresholds) -> Thresholds:
    for name in ("cpu_percent", "memory_percent", "memory_critical_percent", "pool_percent"):
        _field(f"thresholds.{name}", partial(_in_range, getattr(t, name), 0, 100, "a percentage from 0 (off) to 100"))
    _field("thresholds.cpu_sustained_seconds", lambda: _in_range(t.cpu_sustained_seconds, 0, 86_400, "0-86400"))
    _field("thresholds.queue_depth", lambda: _in_range(t.queue_depth, 0, 10**12, "0 (off) or more"))
    if t.memory_percent and t.memory_critical_percent and t.memory_critical_percent < t.memory_percent:
        raise InvalidFieldError(
            "thresholds.memory_critical_percent",
            f"must not be below memory_percent ({t.memory_percent:g}); critical is the higher limit",
        )
    return t


def _in_range(value: float, low: float, high: float, what: str) -> float:
    if not low <= value <= high:
        raise ValueError(f"must be {what} (got {value:g})")
    return value


def _check_probe(p: ProbeOptions, kind: ProbeKind) -> ProbeOptions:
    method = _field("probe.http_method", lambda: parse_enum_text(p.http_method or "GET", HTTP_METHODS))
    for status in p.expected_statuses:
        _field("probe.expected_statuses", partial(_in_range, status, 100, 599, "HTTP status codes (100-599)"))
    _field("probe.body_contains", lambda: check_text(p.body_contains, 1000))
    headers = _field("probe.headers", lambda: check_headers(p.headers))
    _field("probe.ca_file", lambda: check_text(p.ca_file, 1000))
    timeout = p.timeout_seconds or DEFAULT_TIMEOUT_SECONDS
    _field("probe.timeout_seconds", lambda: _in_range(timeout, 0.1, MAX_TIMEOUT_SECONDS, "0.1-300 seconds"))
    _field("probe.max_retries", lambda: _in_range(p.max_retries, 0, MAX_RETRIES, f"0-{MAX_RETRIES}"))
    _field("probe.grpc_service", lambda: check_text(p.grpc_service, 200))
    if p.metrics_url:
        _field("probe.metrics_url", lambda: check_url(p.metrics_url, ("http", "https"), "Prometheus metrics URL"))
    _field("probe.process_name", lambda: check_text(p.process_name, 200))
    _field("probe.process_pid", lambda: _in_range(p.process_pid, 0, 2**31 - 1, "a process id"))
    if kind not in _HTTP_LIKE:
        # HTTP options on a TCP or Redis probe would be silently ignored; say so instead.
        given = {
            "probe.http_method": method != "GET",
            "probe.expected_statuses": bool(p.expected_statuses),
            "probe.body_contains": bool(p.body_contains),
            "probe.headers": bool(headers),
            "probe.tls_skip_verify": p.tls_skip_verify,
            "probe.ca_file": bool(p.ca_file),
        }
        for name, present in given.items():
            if present:
                raise InvalidFieldError(name, f"only applies to http and elasticsearch probes (this one is {kind})")
    if p.grpc_service and kind is not ProbeKind.GRPC:
        raise InvalidFieldError("probe.grpc_service", f"only applies to grpc probes (this one is {kind})")
    return ProbeOptions(
        http_method=method,
        expected_statuses=tuple(sorted(set(p.expected_statuses))),
        body_contains=p.body_contains,
        headers=headers,
        tls_skip_verify=p.tls_skip_verify,
        ca_file=p.ca_file.strip(),
        timeout_seconds=float(timeout),
        max_retries=p.max_retries,
        grpc_service=p.grpc_service.strip(),
        metrics_url=p.metrics_url,
        process_name=p.process_name.strip(),
        process_pid=p.process_pid,
    )


def parse_enum_text(value: str, accepted: tuple[str, ...]) -> str:
    upper = value.strip().upper()
    if upper not in accepted:
        raise ValueError(f"{_shown(value)} is not supported; use one of {', '.join(accepted)}")
    return upper


def define_service(
    *,
    slug: str,
    type: ServiceType | str | None,  # named like the field in the proto and the file
    endpoint: str,
    probe_kind: ProbeKind | str | None = None,
    name: str = "",
    description: str = "",
    labels: Mapping[str, str] | None = None,
    check_interval_seconds: int | None = None,
    thresholds: Thresholds | None = None,
    enabled: bool = True,
    probe: ProbeOptions | None = None,
) -> ServiceDefinition:
    """A valid, normalized definition, or InvalidFieldError naming the first bad field.

    Defaults: name = slug, interval 30 s, probe inferred from the endpoint's scheme, thresholds and
    probe options from `Thresholds()` / `ProbeOptions()`.
    """
    clean_slug = _field("slug", lambda: check_slug(slug.strip()))
    service_type = _field("type", lambda: parse_enum(ServiceType, type, "service type"))
    kind = (
        None if probe_kind in (None, "") else _field("probe_kind", lambda: parse_enum(ProbeKind, probe_kind, "probe"))
    )
    clean_endpoint, kind = _field("endpoint", lambda: check_endpoint(endpoint.strip(), kind))
    return ServiceDefinition(
        slug=clean_slug,
        name=_field("name", lambda: check_text(name, MAX_NAME)) or clean_slug,
        type=service_type,
        endpoint=clean_endpoint,
        probe_kind=kind,
        description=_field("description", lambda: check_text(description, MAX_DESCRIPTION, multiline=True)),
        labels=_field("labels", lambda: check_labels(labels or {})),
        check_interval_seconds=_field("check_interval_seconds", lambda: check_interval(check_interval_seconds)),
        thresholds=_check_thresholds(thresholds or Thresholds()),
        enabled=enabled,
        probe=_check_probe(probe or ProbeOptions(), kind),
    )


def parse_ref(value: str) -> tuple[str | None, str | None]:
    """(id, slug) from a reference given as either; InvalidFieldError when it is neither."""
    ref = value.strip().lower()
    if not ref:
        raise InvalidFieldError("service", "give a service id or slug")
    if UUID_FORM.match(ref):
        return str(uuid.UUID(ref)), None
    if SLUG.match(ref):
        return None, ref
    raise InvalidFieldError("service", f"{_shown(value)} is neither a service id nor a slug")
