"""The declarative file (B2X_CONFIG_FILE): connected services and notification channels, in YAML.

pydantic models check the shape (known keys, types, defaults); `rules.define_service` checks the
values with the same rules the API uses. Any problem stops start-up with one line naming the file
and the path to the bad field:

    B2X_CONFIG_FILE /etc/b2x/services.yaml: services[2].endpoint: must be a URL starting with ...

`config/services.example.yaml` documents every key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.common.errors import ConfigurationError, StartupError
from services.health.alerts.rules import RuleSettings
from services.health.domain import InvalidFieldError, ProbeOptions, ServiceDefinition, Thresholds
from services.health.registry.rules import check_headers, check_url, define_service

_DEFAULT_THRESHOLDS = Thresholds()
_DEFAULT_PROBE = ProbeOptions()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WHOLE_PLACEHOLDER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")

# Definition fields (API names, as in InvalidFieldError) -> where they live in a file entry.
_FILE_PATH = {
    "probe_kind": "probe",
    "check_interval_seconds": "interval_seconds",
    "probe.http_method": "http.method",
    "probe.expected_statuses": "http.expect_status",
    "probe.body_contains": "http.body_contains",
    "probe.headers": "http.headers",
    "probe.tls_skip_verify": "http.tls_skip_verify",
    "probe.ca_file": "http.ca_file",
    "probe.timeout_seconds": "timeout_seconds",
    "probe.max_retries": "max_retries",
    "probe.grpc_service": "grpc_service",
    "probe.metrics_url": "resources.metrics_url",
    "probe.process_name": "resources.process_name",
    "probe.process_pid": "resources.process_pid",
}


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt key silently ignored is the worst kind of config bug.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class ThresholdsModel(_Strict):
    cpu_percent: float = _DEFAULT_THRESHOLDS.cpu_percent
    cpu_sustained_seconds: int = _DEFAULT_THRESHOLDS.cpu_sustained_seconds
    memory_percent: float = _DEFAULT_THRESHOLDS.memory_percent
    memory_critical_percent: float = _DEFAULT_THRESHOLDS.memory_critical_percent
    pool_percent: float = _DEFAULT_THRESHOLDS.pool_percent
    queue_depth: int = _DEFAULT_THRESHOLDS.queue_depth


class HttpModel(_Strict):
    method: str = _DEFAULT_PROBE.http_method
    expect_status: list[int] = Field(default_factory=list)
    body_contains: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    tls_skip_verify: bool = False
    ca_file: str = ""

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str) -> str:
        return check_ca_file(value) if value.strip() else value


class ResourcesModel(_Strict):
    metrics_url: str = ""
    process_name: str = ""
    process_pid: int = 0


class ServiceModel(_Strict):
    slug: str
    name: str = ""
    type: str
    endpoint: str
    probe: str | None = None
    interval_seconds: int = 30
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    thresholds: ThresholdsModel = Field(default_factory=ThresholdsModel)
    http: HttpModel = Field(default_factory=HttpModel)
    # Left out: the default. 0 is an error, not "the default": a user who wrote it meant something else.
    timeout_seconds: float | None = None
    max_retries: int = _DEFAULT_PROBE.max_retries
    grpc_service: str = ""
    resources: ResourcesModel = Field(default_factory=ResourcesModel)
    enabled: bool = True

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError(f"must be more than 0 seconds (got {value:g}); leave it out for the default")
        return value

    def to_definition(self) -> ServiceDefinition:
        """The validated definition; InvalidFieldError names the bad field by its API name."""
        return define_service(
            slug=self.slug,
            name=self.name,
            type=self.type,
            endpoint=self.endpoint,
            probe_kind=self.probe,
            description=self.description,
            labels=self.labels,
            check_interval_seconds=self.interval_seconds,
            thresholds=Thresholds(**self.thresholds.model_dump()),
            enabled=self.enabled,
            probe=ProbeOptions(
                http_method=self.http.method,
                expected_statuses=tuple(self.http.expect_status),
                body_contains=self.http.body_contains,
                headers=self.http.headers,
                tls_skip_verify=self.http.tls_skip_verify,
                ca_file=self.http.ca_file,
                timeout_seconds=self.timeout_seconds or _DEFAULT_PROBE.timeout_seconds,
                max_retries=self.max_retries,
                grpc_service=self.grpc_service,
                metrics_url=self.resources.metrics_url,
                process_name=self.resources.process_name,
                process_pid=self.resources.process_pid,
            ),
        )


def check_ca_file(value: str) -> str:
    """A readable PEM bundle holding at least one certificate, checked when the file is loaded."""
    path = Path(value.strip()).expanduser()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError(f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return value


def _reference_or_url(value: str, schemes: tuple[str, ...], what: str) -> str:
    # A webhook URL is itself the secret, so `${SLACK_WEBHOOK_URL}` alone is the recommended form.
    if _WHOLE_PLACEHOLDER.match(value):
        return value
    return check_url(value, schemes, what)


_CHANNEL_KINDS = ("email", "slack", "webhook", "alertmanager")
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: object) -> float:
    """Seconds from `30s`, `5m`, `4h`, `1d`, `1h30m` (Alertmanager's notation) or a plain number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        match = _DURATION.match(text)
        if not text or match is None or not any(match.groups()):
            raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 4h")
        days, hours, minutes, secs = (float(group or 0) for group in match.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    if seconds < 0 or seconds > 30 * 86400:
        raise ValueError("must be between 0s and 30d")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _address(value: str) -> str:
    if not (_EMAIL.match(value) or _WHOLE_PLACEHOLDER.match(value)):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


class EmailChannelModel(_Strict):
    """E-mail over SMTP. Port 0 means the usual one for `security`: 25 (none, auto), 587 (starttls), 465 (tls)."""

    type: Literal["email"] = "email"
    to: list[str] = Field(min_length=1)
    from_: str = Field(default="", alias="from")
    host: str = "localhost"
    port: int = Field(default=0, ge=0, le=65535)
    # auto: STARTTLS when the server offers it; starttls: required; tls: implicit TLS (SMTPS); none: plain.
    security: Literal["auto", "starttls", "tls", "none"] = "auto"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    tls_skip_verify: bool = False
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [_address(address) for address in value]

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address(value) if value else value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(c.isspace() or c in "/@" for c in value):
            raise ValueError(f"{value!r} is not a host name")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        # A password written into the file would end up in version control; only a reference is accepted.
        if value and not _WHOLE_PLACEHOLDER.match(value):
            raise ValueError("must be a reference such as ${SMTP_PASSWORD}, not the password itself")
        return value

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465}.get(self.security, 25)


class SlackChannelModel(_Strict):
    type: Literal["slack"] = "slack"
    webhook_url: str
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _reference_or_url(value, ("https",), "Slack incoming-webhook URL")


class WebhookChannelModel(_Strict):
    """Receives Alertmanager's webhook payload (version 4)."""

    type: Literal["webhook"] = "webhook"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    # Alertmanager's `max_alerts`: at most this many alerts per message, the rest counted in truncatedAlerts.
    max_alerts: int = Field(default=0, ge=0)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _reference_or_url(value, ("http", "https"), "webhook URL")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)


class AlertmanagerChannelModel(_Strict):
    """Forwards alerts to an Alertmanager (`POST <url>/api/v2/alerts`), which then groups and routes them."""

    type: Literal["alertmanager"] = "alertmanager"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    # Alertmanager resolves an alert nobody re-sent within its resolve_timeout (5m): firing alerts are re-sent
    # this often, whatever the route's repeat_interval.
    resend_interval: Duration = 60.0
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _reference_or_url(value, ("http", "https"), "Alertmanager URL")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)

    @field_validator("resend_interval")
    @classmethod
    def _resend(cls, value: float) -> float:
        if not 1 <= value <= 240:
            raise ValueError("must be between 1s and 4m (below Alertmanager's resolve_timeout)")
        return value


ChannelModel = Annotated[
    EmailChannelModel | SlackChannelModel | WebhookChannelModel | AlertmanagerChannelModel,
    Field(discriminator="type"),
]


class _Matching(_Strict):
    match: dict[str, str] = Field(default_factory=dict)
    # Label values matched by a regular expression, anchored at both ends as in Alertmanager.
    match_re: dict[str, str] = Field(default_factory=dict)

    @field_validator("match_re")
    @classmethod
    def _patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{label}: {pattern!r} is not a regular expression ({error})") from None
        return value

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(name, "") != value for name, value in self.match.items()):
            return False
        return all(re.fullmatch(pattern, labels.get(name, "")) for name, pattern in self.match_re.items())


class RouteModel(_Matching):
    """A child route: alerts whose labels match go to its channels, with its timing where it sets one."""

    channels: list[str] = Field(min_length=1)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    # Alertmanager's `continue`: look at the following routes too after this one matched.
    continue_: bool = Field(default=False, alias="continue")


class RootRouteModel(_Strict):
    """The root route: alerts no child route takes go to `channels` (default: every channel)."""

    channels: list[str] = Field(default_factory=list)
    group_by: list[str] = Field(default_factory=lambda: ["rule"])
    # Shorter than Alertmanager's 30s: a critical alert reaches a person well within the minute.
    group_wait: Duration = 10.0
    group_interval: Duration = 300.0
    repeat_interval: Duration = 4 * 3600.0
    routes: list[RouteModel] = Field(default_factory=list)


class RetryModel(_Strict):
    """Backoff between attempts of one notification: initial, doubled each time up to max; never given up."""

    initial: Duration = 5.0
    max: Duration = 600.0


class NotificationsModel(_Strict):
    """Channels, and how alerts are grouped and routed to them (services/health/alerts/delivery)."""

    # Base URL of the dashboard (the gateway), for the link beside each alert in a message.
    dashboard_url: str = ""
    channels: dict[str, ChannelModel] = Field(default_factory=dict)
    route: RootRouteModel = Field(default_factory=RootRouteModel)
    retry: RetryModel = Field(default_factory=RetryModel)

    @field_validator("channels", mode="before")
    @classmethod
    def _kind_from_name(cls, value: object) -> object:
        # `email: {to: [...]}` (the first format) names a channel after its type; other names say `type:`.
        if not isinstance(value, dict):
            return value
        typed: dict[object, object] = {}
        for name, entry in value.items():
            if not isinstance(name, str) or not _CHANNEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a channel name (lowercase letters, digits, '-', '_')")
            if isinstance(entry, dict) and "type" not in entry:
                if name not in _CHANNEL_KINDS:
                    raise ValueError(f"{name!r} needs a type: {', '.join(_CHANNEL_KINDS)}")
                typed[name] = {"type": name, **entry}
            else:
                typed[name] = entry
        return typed

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard(cls, value: str) -> str:
        return check_url(value, ("http", "https"), "dashboard URL").rstrip("/") if value else value

    @model_validator(mode="after")
    def _routes_name_channels(self) -> NotificationsModel:
        known = sorted(self.channels)
        named = [("route.channels", self.route.channels)]
        named += [(f"route.routes[{i}].channels", route.channels) for i, route in enumerate(self.route.routes)]
        for where, channels in named:
            for channel in channels:
                if channel not in self.channels:
                    raise ValueError(f"{where}: {channel!r} is not a channel (defined: {', '.join(known) or 'none'})")
        if self.retry.max < self.retry.initial or self.retry.initial <= 0:
            raise ValueError("retry: initial must be above 0s and not above max")
        return self


class AlertRulesModel(_Strict):
    """The `alerts:` section: the alert rules' parameters (services/health/alerts/rules.py)."""

    job_failure_rate_count: int = Field(default=5, ge=1, le=100_000)
    job_failure_rate_minutes: int = Field(default=10, ge=1, le=1440)
    service_offline_checks: int = Field(default=3, ge=1, le=1000)
    service_degraded_minutes: int = Field(default=5, ge=1, le=1440)
    error_spike_count: int = Field(default=10, ge=1, le=100_000)
    error_spike_minutes: int = Field(default=10, ge=1, le=60)
    tls_expiry_days: int = Field(default=14, ge=1, le=365)


class ConfigFileModel(_Strict):
    version: Literal[1] = 1
    services: list[ServiceModel] = Field(default_factory=list)
    notifications: NotificationsModel = Field(default_factory=NotificationsModel)
    alerts: AlertRulesModel = Field(default_factory=AlertRulesModel)


@dataclass(frozen=True)
class HealthConfig:
    """The file after validation: service definitions in file order, and the notification channels."""

    path: Path
    services: tuple[ServiceDefinition, ...]
    notifications: NotificationsModel
    alert_rules: RuleSettings = field(default_factory=RuleSettings)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", mark
                )  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _fail(path: Path, message: str) -> StartupError:
    return ConfigurationError(f"B2X_CONFIG_FILE {path}: {message}")


def _loc(parts: tuple[int | str, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _fields_at(parts: tuple[int | str, ...]) -> list[str]:
    """The keys allowed at a location, for "did you mean" hints."""
    model: Any = ConfigFileModel
    for part in parts:
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return []
        model = info.annotation
        for candidate in getattr(model, "__args__", ()):  # list[X], X | None
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
    fields = getattr(model, "model_fields", {})
    return [info.alias or name for name, info in fields.items()]


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    parts = tuple(first["loc"])
    if parts[:2] == ("notifications", "channels") and len(parts) > 3 and parts[3] in _CHANNEL_KINDS:
        parts = parts[:3] + parts[4:]  # the discriminator's tag is not a key of the file
    if first["type"] == "extra_forbidden":
        allowed = _fields_at(parts[:-1])
        hint = difflib.get_close_matches(str(parts[-1]), allowed, n=1)
        if hint:
            return f"{_loc(parts)}: unknown key; did you mean {hint[0]!r}?"
        return f"{_loc(parts)}: unknown key" + (f"; expected one of {', '.join(allowed)}" if allowed else "")
    if first["type"] == "missing":
        return f"{_loc(parts)}: is required"
    return f"{_loc(parts)}: {first['msg'].removeprefix('Value error, ')}"


def _file_field(field: str) -> str:
    for api_name, file_name in sorted(_FILE_PATH.items(), key=lambda item: -len(item[0])):
        if field == api_name or field.startswith(api_name + "."):
            return file_name + field[len(api_name) :]
    return field


def parse_config(text: str, path: Path) -> HealthConfig:
    """Validate the file's text; StartupError with one line on the first problem."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise _fail(path, f"{where}{problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _fail(path, "must be a mapping with a 'services:' list at the top level")
    try:
        model = ConfigFileModel.model_validate(raw)
    except ValidationError as error:
        raise _fail(path, _describe(error)) from None
    definitions: list[ServiceDefinition] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(model.services):
        try:
            definition = entry.to_definition()
        except InvalidFieldError as error:
            raise _fail(path, f"services[{index}].{_file_field(error.field)}: {error.reason}") from None
        if definition.slug in first_index:
            earlier = first_index[definition.slug]
            raise _fail(path, f"services[{index}].slug: {definition.slug!r} is already used by services[{earlier}]")
        first_index[definition.slug] = index
        definitions.append(definition)
    return HealthConfig(
        path=path,
        services=tuple(definitions),
        notifications=model.notifications,
        alert_rules=RuleSettings(**model.alerts.model_dump()),
    )


def load_config(path: Path) -> HealthConfig:
    """Read and validate the declarative file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise _fail(path, f"cannot read: {reason}") from None
    return parse_config(text, path)
