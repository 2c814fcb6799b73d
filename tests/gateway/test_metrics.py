"""The gateway's own /metrics: HTTP requests, GraphQL operations and its calls to the services."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import Gateway


async def scrape(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await gw.http.get(f"{gw.url}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def delta(before: dict, after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_operations_are_counted_by_type_root_field_and_outcome(gw: Gateway) -> None:
    """A query, a mutation refused for the viewer's role, a query that fails validation and a request
    without a key each show up once, labelled by what they were and how they ended; the gateway's
    ListJobs call to the jobs service is counted on the client side."""
    before = await scrape(gw)
    assert (await gw.query(gw.viewer, "{ jobs(first: 1) { totalCount } }")).status_code == 200
    refused = await gw.query(gw.viewer, 'mutation { createJob(input: {jobType: "ERP_STOCK_SYNC"}) { id } }')
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await gw.query(gw.viewer, "{ noSuchField }")
    assert (await gw.query(None, "{ jobs(first: 1) { totalCount } }")).status_code == 401
    after = await scrape(gw)

    ops = "b2x_graphql_operations_total"
    assert delta(before, after, ops, operation_type="query", root_field="jobs", outcome="ok") == 1
    assert delta(before, after, ops, operation_type="mutation", root_field="createJob", outcome="FORBIDDEN") == 1
    assert (
        delta(before, after, ops, operation_type="invalid", root_field="invalid", outcome="GRAPHQL_VALIDATION_FAILED")
        == 1
    )
    http = "b2x_http_requests_total"
    assert delta(before, after, http, route="/graphql", method="POST", status="200") == 3
    assert delta(before, after, http, route="/graphql", method="POST", status="401") == 1
    calls = "b2x_grpc_client_requests_total"
    assert delta(before, after, calls, target="jobs", method="ListJobs", code="OK") == 1
    assert after[("b2x_build_info", (("component", "gateway"), ("version", "0.1.0")))] == 1
