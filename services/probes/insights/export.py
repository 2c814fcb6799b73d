"""Exports for support tickets: communication errors and connection tests as JSON or plain text.

Everything exported was masked when it was stored; the text passes the masking once more on its way
out, so an export can be attached to a ticket or mailed to a provider as it is. The text form is the
seed's "Report to Provider" template: a greeting, the evidence of each error (request, response,
timing waterfall, retry history, correlation and trace ids), the questions to ask, our own analysis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from services.common.masking import mask_text, mask_value
from services.probes.domain import CommunicationError, ConnectionTestResult, ErrorDetails, Timing

GENERATOR = "B2X Monitoring"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="milliseconds") if at else None


def _shown(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d} UTC"


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms")


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    if value < 1024:
        return f"{value} bytes"
    scaled = float(value)
    for unit in ("KB", "MB", "GB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GB":
            break
    return f"{scaled:.1f} {unit}"


def details_json(d: ErrorDetails) -> dict[str, Any]:
    return {
        "request": {
            "method": d.http_method,
            "url": d.endpoint_url,
            "headers": d.request_headers,
            "payload_summary": d.request_payload_summary,
            "payload_size_bytes": d.request_payload_size_bytes,
        },
        "response": {
            "status_code": d.http_status_code,
            "headers": d.response_headers,
            "body_summary": d.response_body_summary,
            "size_bytes": d.response_payload_size_bytes,
        },
        "timing_ms": asdict(d.timing),
        "retry": {
            "attempt": d.retry_attempt,
            "max_retries": d.max_retries,
            "history": [{**asdict(r), "attempted_at": _iso(r.attempted_at)} for r in d.retry_history],
        },
        "correlation_id": d.correlation_id,
        "trace_id": d.trace_id,
        "span_id": d.span_id,
    }


def error_json(e: CommunicationError) -> dict[str, Any]:
    c = e.classification
    return {
        "id": e.id,
        "service_id": e.service_id,
        "service_slug": e.service_slug,
        "timestamp": _iso(e.timestamp),
        "error_type": c.error_type.value,
        "error_group": c.group.value,
        "severity": c.severity.value,
        "error_code": c.code,
        "message": c.message,
        "connection_test_id": e.connection_test_id,
        "correlated_job_id": e.correlated_job_id,
        **details_json(e.details),
        "recommendations": e.recommendations,
    }


def errors_to_json(errors: Sequence[CommunicationError], selection: dict[str, Any], truncated: bool) -> str:
    document = {
        "generator": GENERATOR,
        "exported_at": _iso(datetime.now(UTC)),
        "selection": selection,
        "count": len(errors),
        "truncated": truncated,
        "errors": [error_json(e) for e in errors],
    }
    return json.dumps(mask_value(document), indent=2, ensure_ascii=False) + "\n"


def waterfall(timing: Timing) -> list[str]:
    rows = [
        ("DNS", timing.dns_ms), ("TCP connect", timing.tcp_ms), ("TLS", timing.tls_ms),
        ("First byte", timing.ttfb_ms), ("Download", timing.download_ms),
    ]  # fmt: skip
    total = timing.total_ms or 1.0
    lines = []
    for name, value in rows:
        bar = "#" * max(1, round(30 * (value or 0) / total)) if value else ""
        lines.append(f"  {name:<11} {bar:<30} {_ms(value)}")
    lines.append(f"  {'Total':<11} {'':<30} {_ms(timing.total_ms)}")
    return lines


def _evidence_lines(d: ErrorDetails) -> list[str]:
    lines = ["REQUEST", f"  {d.http_method or '(not HTTP)'} {d.endpoint_url}".rstrip()]
    lines += [f"  {name}: {value}" for name, value in sorted(d.request_headers.items())]
    if d.request_payload_summary:
        lines += [f"  Body (truncated): {d.request_payload_summary}"]
    if d.request_payload_size_bytes:
        lines += [f"  Size: {_size(d.request_payload_size_bytes)}"]
    lines += ["", "RESPONSE"]
    if d.http_status_code is None:
        lines.append("  Status: - (no HTTP response)")
    else:
        lines.append(f"  Status: {d.http_status_code}")
        lines += [f"  {name}: {value}" for name, value in sorted(d.response_headers.items())]
        if d.response_body_summary:
            lines.append(f"  Body (truncated): {d.response_body_summary}")
        lines.append(f"  Size: {_size(d.response_payload_size_bytes)}")
    lines += ["", "TIMING", *waterfall(d.timing)]
    if d.retry_history:
        lines += ["", "RETRY HISTORY"]
        for r in d.retry_history:
            after = f"waited {r.delay_before_retry_ms / 1000:g} s" if r.delay_before_retry_ms else "no further retry"
            outcome = r.error_message or "succeeded"
            lines.append(
                f"  #{r.attempt_number} {r.attempted_at.astimezone(UTC):%H:%M:%S} -> {outcome} "
                f"({_ms(r.duration_ms)}) -> {after}"
            )
    return lines


def error_report(e: CommunicationError) -> list[str]:
    c = e.classification
    d = e.details
    lines = [
        f"Error ........ {c.group.value} / {c.error_type.value} (severity {c.severity.value}, code {c.code})",
        f"Message ...... {c.message}",
        f"Time ......... {_shown(e.timestamp)}",
        f"Service ...... {e.service_slug} ({e.service_id})",
        f"Error id ..... {e.id}",
    ]
    if d.correlation_id:
        lines.append(f"Correlation .. {d.correlation_id} (sent as X-Correlation-Id)")
    if d.trace_id:
        lines.append(f"Trace ........ {d.trace_id} span {d.span_id} (W3C traceparent)")
    if e.correlated_job_id:
        lines.append(f"Affected job . {e.correlated_job_id}")
    lines += ["", *_evidence_lines(d)]
    if e.recommendations:
        lines += ["", "OUR ANALYSIS", *(f"  - {r}" for r in e.recommendations)]
    return lines


def errors_to_text(errors: Sequence[CommunicationError]) -> str:
    """The "Report to Provider" template, filled with the evidence of each error."""
    services = sorted({e.service_slug for e in errors})
    first = min((e.timestamp for e in errors), default=datetime.now(UTC))
    last = max((e.timestamp for e in errors), default=first)
    kinds = sorted({e.classification.error_type.value for e in errors})
    subject = f"Subject: Failing requests from B2X to {', '.join(services) or 'your service'}: {', '.join(kinds)}"
    lines = [
        subject,
        "",
        "Hello,",
        "",
        f"our integration platform (B2X) recorded {len(errors)} failed request(s) to your service between "
        f"{_shown(first)} and {_shown(last)}. The evidence follows; credentials and personal data are masked.",
        "",
        "Could you please check, for the correlation ids below:",
        "  1. whether the requests reached your service, and what it logged for them;",
        "  2. whether anything was running at those times (deployments, backups, batch jobs, rate limits);",
        "  3. whether our client configuration (certificates, credentials, endpoints) needs to change.",
    ]
    for number, error in enumerate(errors, 1):
        lines += ["", "=" * 72, f"ERROR {number} of {len(errors)}", "=" * 72, *error_report(error)]
    lines += ["", "Thank you and kind regards,", "", f"-- generated by {GENERATOR} on {_shown(datetime.now(UTC))}"]
    return mask_text("\n".join(lines)) + "\n"


def connection_test_json(result: ConnectionTestResult, name: str) -> dict[str, Any]:
    return {
        "id": result.id,
        "service_id": result.service_id,
        "service_slug": result.service_slug,
        "service_name": name,
        "executed_at": _iso(result.executed_at),
        "success": result.success,
        "status": "PASSED" if result.success else "FAILED",
        "degraded": result.degraded,
        "summary": result.summary,
        "probe_kind": result.kind.value,
        "endpoint": result.endpoint,
        "speed_rating": result.speed_rating.value if result.speed_rating else None,
        "metrics": asdict(result.metrics),
        "phases": [{**asdict(p), "name": p.name.value, "status": p.status.value} for p in result.phases],
        "error": None
        if result.error is None
        else {"type": result.error.error_type.value, "group": result.error.group.value,
              "severity": result.error.severity.value, "code": result.error.code, "message": result.error.message},
        "communication_error_id": result.communication_error_id,
        "circuit_breaker": result.breaker.value if result.breaker else None,
        "recommendations": result.recommendations,
        "correlation_id": result.correlation_id,
        "evidence": details_json(result.evidence),
    }  # fmt: skip


def connection_test_to_json(result: ConnectionTestResult, name: str) -> str:
    document = {
        "generator": GENERATOR,
        "exported_at": _iso(datetime.now(UTC)),
        "connection_test": connection_test_json(result, name),
    }
    return json.dumps(mask_value(document), indent=2, ensure_ascii=False) + "\n"


def connection_test_to_text(result: ConnectionTestResult, name: str) -> str:
    m = result.metrics
    lines = [
        f"Connection Test Results - {name}",
        "=" * 72,
        f"Status: {'PASSED' if result.success else 'FAILED'}"
        + (f"    Speed: {result.speed_rating.value.title()}" if result.speed_rating else ""),
        f"Summary: {result.summary}",
        f"Endpoint: {result.endpoint} ({result.kind.value})",
        f"Tested: {_shown(result.executed_at)}    Test id: {result.id}",
        f"Correlation id: {result.correlation_id}",
        "",
        "LATENCY BREAKDOWN",
        *waterfall(result.evidence.timing),
        f"  Throughput: {m.throughput_kbps:,.1f} kbit/s over {_size(m.bytes_downloaded)}",
    ]
    if result.error is not None:
        e = result.error
        lines += ["", "ERROR", f"  {e.group.value} / {e.error_type.value} (severity {e.severity.value}): {e.message}"]
    if result.recommendations:
        lines += ["", "RECOMMENDATIONS", *(f"  - {r}" for r in result.recommendations)]
    lines += ["", "PHASES"]
    lines += [f"  {p.name.value:<20} {p.status.value:<8} {_ms(p.duration_ms):>10}  {p.detail}" for p in result.phases]
    lines += ["", *_evidence_lines(result.evidence), "", f"-- generated by {GENERATOR} on {_shown(datetime.now(UTC))}"]
    return mask_text("\n".join(lines)) + "\n"
