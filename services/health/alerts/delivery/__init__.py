"""Notification delivery: the outbox, grouping and routing, the channels, and the worker that sends.

    build_delivery(settings, pool, config) -> (sink, worker)

The lifecycle hands every alert state change to `sink.submit(connection, notices)` inside its own
transaction; the worker (started and stopped with the health service) routes them into Alertmanager-style
groups per route and channel, flushes the groups into notifications and sends each over its channel with
retries. See docs/adr/0018-notification-delivery.md.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import asyncpg

from services.common.settings import CommonSettings
from services.health.alerts.delivery.channels import build_channels
from services.health.alerts.delivery.outbox import Outbox
from services.health.alerts.delivery.sink import OutboxSink
from services.health.alerts.delivery.worker import DeliveryWorker, WorkerOptions
from services.health.registry.config import HealthConfig, NotificationsModel

__all__ = ["DeliveryWorker", "OutboxSink", "build_delivery"]


def build_delivery(
    settings: CommonSettings,
    pool: asyncpg.Pool,
    config: HealthConfig | NotificationsModel | None,
    *,
    environ: Mapping[str, str] | None = None,
    poll_seconds: float = 1.0,
) -> tuple[OutboxSink, DeliveryWorker]:
    """The sink for the lifecycle and the worker for the composition root (start()/stop()).

    `environ` resolves the file's `${NAME}` references (default: this process's environment, read here
    once per send rather than anywhere else)."""
    notifications = config.notifications if isinstance(config, HealthConfig) else (config or NotificationsModel())
    env = os.environ if environ is None else environ
    channels = build_channels(notifications, env)
    outbox = Outbox(pool, notifications)
    worker_id = f"health@{getattr(settings, 'health_consumer_name', '') or socket.gethostname()}:{os.getpid()}"
    options = WorkerOptions(
        worker_id=worker_id,
        poll_seconds=poll_seconds,
        retry_initial=notifications.retry.initial,
        retry_max=notifications.retry.max,
    )
    sink = OutboxSink(outbox, channels, notifications.dashboard_url)
    return sink, DeliveryWorker(outbox, channels, options)
