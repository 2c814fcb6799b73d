"""Elasticsearch probe: `GET /_cluster/health`; green passes, yellow passes degraded, red fails."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.probes.domain import PhaseName, ProbeKind, ProbeOptions, Target
from services.probes.probing.checks.base import Attempt, CheckOutcome
from services.probes.probing.checks.http import HttpRequest, exchange, validate
from services.probes.probing.checks.http1 import BodyLimits, HttpResponse
from services.probes.probing.checks.net import TlsSettings
from services.probes.probing.classify_http import classify_cluster_health, parse_json
from services.probes.probing.faults import CheckFailed
from services.probes.probing.placeholders import Expanded


def health_url(endpoint: str) -> str:
    """The cluster health URL under the endpoint's path (a proxy prefix is kept)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if not path.endswith("/_cluster/health"):
        path += "/_cluster/health"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


async def _judge(response: HttpResponse, options: ProbeOptions) -> tuple[str, Any]:
    text = validate(response, options.expected_statuses, options.body_contains)
    document, failure = parse_json(text)
    if failure is not None:
        raise CheckFailed(failure)
    verdict, failure = classify_cluster_health(document)
    if failure is not None:
        raise CheckFailed(failure)
    return verdict, document


class ElasticsearchCheck:
    kind = ProbeKind.ELASTICSEARCH

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits

    async def run(self, target: Target, expanded: Expanded, attempt: Attempt) -> CheckOutcome:
        options = target.options
        tls = TlsSettings(verify=not options.tls_skip_verify, ca_file=options.ca_file)
        request = HttpRequest("GET", health_url(expanded.endpoint), list(expanded.headers), tls)
        response = await exchange(attempt, request, self._limits)
        verdict, document = await attempt.step(
            PhaseName.PROTOCOL_CHECK, _judge(response, options), lambda r: f"cluster status {r[1].get('status')}"
        )
        name, status = document.get("cluster_name", "?"), document.get("status")
        summary = f"Elasticsearch cluster {name} is {status} ({document.get('number_of_nodes', '?')} nodes)"
        if verdict == "degraded":
            replicas = document.get("unassigned_shards", "?")
            advice = (
                f"Elasticsearch cluster {name} is yellow: {replicas} replica shards are unassigned, so one more "
                "node failure may lose data — add a node or lower number_of_replicas"
            )
            return CheckOutcome(summary=summary, degraded=True, advice=[advice])
        return CheckOutcome(summary=summary)
