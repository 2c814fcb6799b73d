"""Domain values ⇄ the JSON documents stored in jsonb columns (metrics, phases, evidence)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from services.probes.domain import (
    ConnectionTestMetrics,
    ErrorDetails,
    Phase,
    PhaseName,
    PhaseStatus,
    RetryAttempt,
    Timing,
)


def metrics_to_json(metrics: ConnectionTestMetrics) -> dict[str, Any]:
    return asdict(metrics)


def metrics_from_json(data: dict[str, Any]) -> ConnectionTestMetrics:
    return ConnectionTestMetrics(**{k: v for k, v in data.items() if k in ConnectionTestMetrics.__dataclass_fields__})


def phases_to_json(phases: list[Phase]) -> list[dict[str, Any]]:
    return [
        {"name": p.name.value, "status": p.status.value, "duration_ms": p.duration_ms, "detail": p.detail,
         "attempt": p.attempt}
        for p in phases
    ]  # fmt: skip


def phases_from_json(data: list[dict[str, Any]]) -> list[Phase]:
    return [
        Phase(
            PhaseName(p["name"]), PhaseStatus(p["status"]), p["duration_ms"], p.get("detail", ""), p.get("attempt", 1)
        )
        for p in data
    ]


def details_to_json(details: ErrorDetails) -> dict[str, Any]:
    data = asdict(details)
    data["retry_history"] = [{**asdict(r), "attempted_at": r.attempted_at.isoformat()} for r in details.retry_history]
    return data


def details_from_json(data: dict[str, Any]) -> ErrorDetails:
    fields = {k: v for k, v in data.items() if k in ErrorDetails.__dataclass_fields__}
    fields["timing"] = Timing(**data.get("timing", {}))
    fields["retry_history"] = [
        RetryAttempt(**{**r, "attempted_at": datetime.fromisoformat(r["attempted_at"])})
        for r in data.get("retry_history", [])
    ]
    return ErrorDetails(**fields)
