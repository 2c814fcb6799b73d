"""The four kinds of channel: e-mail (aiosmtplib), Slack incoming webhook, Alertmanager webhook, Alertmanager.

`${NAME}` references in the file are resolved from the health service's environment when a message is
sent, so a secret never sits in the database and a variable set later is picked up on the next attempt.
Every failure becomes a `DeliveryError` whose text is safe to show: it names the server and the reason,
never a password or a webhook URL (which is a secret itself).
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
import httpx

from services.health.alerts.delivery import render
from services.health.alerts.delivery.domain import Channel, DeliveryError, Message
from services.health.registry.config import (
    AlertmanagerChannelModel,
    EmailChannelModel,
    NotificationsModel,
    SlackChannelModel,
    WebhookChannelModel,
)

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
USER_AGENT = "b2x-monitoring-notifier/1"


def resolve(value: str, environ: Mapping[str, str], what: str) -> str:
    """Expand `${NAME}` references; an unset variable is a delivery error naming it (retried later)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise DeliveryError(f"{what}: environment variable {name} is not set in the health service")
        return environ[name]

    return _REFERENCE.sub(one, value)


class EmailChannel:
    """One SMTP server and its recipients; a plain-text and an HTML part per message."""

    kind = "email"

    def __init__(self, name: str, model: EmailChannelModel, environ: Mapping[str, str]) -> None:
        self.name = name
        self._model = model
        self._environ = environ
        # Connect, EHLO, STARTTLS, AUTH and DATA may each take up to the timeout.
        self.lease_seconds = 5 * model.timeout_seconds + 30

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self._model.ca_file or None)
        if self._model.tls_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def build(self, message: Message) -> EmailMessage:
        model = self._model
        sender = resolve(model.from_, self._environ, "from") or f"b2x-monitoring@{socket.getfqdn()}"
        email = EmailMessage()
        email["Subject"] = render.subject(message)
        email["From"] = sender
        email["To"] = ", ".join(resolve(to, self._environ, "to") for to in model.to)
        email["Date"] = formatdate(localtime=False, usegmt=True)
        # The idempotency key as Message-ID: a message sent twice after a crash is one message to mail clients.
        domain = sender.rpartition("@")[2] or "b2x.local"
        key = re.sub(r"[^A-Za-z0-9._-]", ".", message.idempotency_key)
        email["Message-ID"] = f"<{key}@{domain}>" if not message.test else make_msgid("b2x-test", domain)
        email["X-B2X-Idempotency-Key"] = message.idempotency_key
        email.set_content(render.email_text(message))
        email.add_alternative(render.email_html(message), subtype="html")
        return email

    async def send(self, message: Message) -> str:
        model = self._model
        email = self.build(message)
        security = model.security
        password = resolve(model.password, self._environ, "password") if model.password else None
        try:
            errors, reply = await aiosmtplib.send(
                email,
                hostname=model.host,
                port=model.effective_port,
                username=model.username or None,
                password=password if model.username else None,
                use_tls=security == "tls",
                start_tls=True if security == "starttls" else (False if security in ("none", "tls") else None),
                tls_context=self._tls_context() if security != "none" else None,
                timeout=model.timeout_seconds,
            )
        except aiosmtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"SMTP {model.host}:{model.effective_port} refused the login: {error.code}") from None
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = ", ".join(r.recipient for r in error.recipients)
            where = f"{model.host}:{model.effective_port}"
            raise DeliveryError(f"SMTP {where} refused every recipient: {refused}") from None
        except aiosmtplib.SMTPResponseException as error:
            text = error.message.splitlines()[0] if error.message else ""
            raise DeliveryError(f"SMTP {model.host}:{model.effective_port} answered {error.code} {text}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DeliveryError(f"SMTP {model.host}:{model.effective_port}: {reason}") from None
        if errors:
            refused = ", ".join(f"{to} ({code})" for to, (code, _) in errors.items())
            return f"accepted, refused for {refused}: {reply}"
        return f"accepted: {reply.splitlines()[0] if reply else ''}"

    async def aclose(self) -> None:
        return None


class _HttpChannel:
    """A channel that POSTs JSON; 2xx is delivered, anything else (or no answer in time) is retried."""

    kind = "http"

    def __init__(self, name: str, url: str, headers: Mapping[str, str], timeout: float, environ: Mapping[str, str]):
        self.name = name
        self._url = url
        self._headers = headers
        self._environ = environ
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self.lease_seconds = 4 * timeout + 30  # connect, write, read and pool waits are each bounded by it

    def _where(self) -> str:
        # The URL may carry a token (Slack's does): name only its scheme, host and port.
        try:
            url = httpx.URL(resolve(self._url, self._environ, "url"))
        except (DeliveryError, httpx.InvalidURL):
            return f"channel {self.name}"
        return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")

    async def _post(self, message: Message, url_path: str, body: Any) -> str:
        base = resolve(self._url, self._environ, "url")
        url = base.rstrip("/") + url_path if url_path else base
        headers = {k: resolve(v, self._environ, f"header {k}") for k, v in self._headers.items()}
        headers.setdefault("User-Agent", USER_AGENT)
        headers["Idempotency-Key"] = message.idempotency_key
        try:
            response = await self._client.post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(f"{self._where()} did not answer within {self._client.timeout.read} s") from None
        except httpx.HTTPError as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DeliveryError(f"{self._where()}: {reason}") from None
        snippet = response.text[:200].strip()
        if not response.is_success:
            raise DeliveryError(f"{self._where()} answered {response.status_code} {snippet}".rstrip())
        return f"{response.status_code} {snippet}".rstrip()

    async def aclose(self) -> None:
        await self._client.aclose()


class SlackChannel(_HttpChannel):
    kind = "slack"

    def __init__(self, name: str, model: SlackChannelModel, environ: Mapping[str, str]) -> None:
        super().__init__(name, model.webhook_url, {}, model.timeout_seconds, environ)

    async def send(self, message: Message) -> str:
        return await self._post(message, "", render.slack_payload(message))


class WebhookChannel(_HttpChannel):
    kind = "webhook"

    def __init__(self, name: str, model: WebhookChannelModel, environ: Mapping[str, str]) -> None:
        super().__init__(name, model.url, model.headers, model.timeout_seconds, environ)
        self._max_alerts = model.max_alerts

    async def send(self, message: Message) -> str:
        return await self._post(message, "", render.webhook_payload(message, self.name, self._max_alerts))


class AlertmanagerChannel(_HttpChannel):
    kind = "alertmanager"

    def __init__(self, name: str, model: AlertmanagerChannelModel, environ: Mapping[str, str]) -> None:
        super().__init__(name, model.url, model.headers, model.timeout_seconds, environ)

    async def send(self, message: Message) -> str:
        return await self._post(message, "/api/v2/alerts", render.alertmanager_alerts(message))


def build_channels(config: NotificationsModel, environ: Mapping[str, str]) -> dict[str, Channel]:
    """One channel object per configured channel, by name."""
    channels: dict[str, Channel] = {}
    for name, model in config.channels.items():
        if isinstance(model, EmailChannelModel):
            channels[name] = EmailChannel(name, model, environ)
        elif isinstance(model, SlackChannelModel):
            channels[name] = SlackChannel(name, model, environ)
        elif isinstance(model, WebhookChannelModel):
            channels[name] = WebhookChannel(name, model, environ)
        else:
            channels[name] = AlertmanagerChannel(name, model, environ)
    return channels
