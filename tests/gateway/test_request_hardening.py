"""What the gateway refuses before any work is done, over real HTTP: oversized documents, ambiguous
operations, malformed bodies, floods of bad keys; what it records: the caller's real address and request id."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from b2x.monitoring.v1 import jobs_pb2

from gateway.auth import KeyStore, Role
from tests.gateway.conftest import Gateway
from tests.support import ServiceHarness


def _code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_a_document_with_too_many_tokens_is_refused_by_the_parser(gw: Gateway) -> None:
    """240 KB of `viewer { name }` (under the body limit) is refused for its token count, not after validation;
    the gateway keeps answering /health/live meanwhile."""
    flood = "{" + " viewer { name }" * 15_000 + "}"
    attacks = [gw.query(gw.viewer, flood) for _ in range(4)]
    results = await asyncio.gather(*attacks, gw.http.get(f"{gw.url}/health/live"))
    for response in results[:4]:
        body = response.json()
        assert "tokens" in body["errors"][0]["message"], body["errors"][0]["message"][:200]
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert results[4].status_code == 200


async def test_fields_repeated_beyond_the_limit_are_refused_before_validation(gw: Gateway) -> None:
    """The same field selected 200 times in one selection set (directly or through fragments) is refused
    with GRAPHQL_VALIDATION_FAILED naming the field; a few repeats are fine."""
    direct = "{ viewer {" + " name" * 200 + " } }"
    spread = (
        "{ viewer { "
        + " ".join(f"...F{i}" for i in range(100))
        + " } } "
        + " ".join(f"fragment F{i} on Viewer {{ name }}" for i in range(100))
    )
    for query in (direct, spread):
        body = (await gw.query(gw.viewer, query)).json()
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "'name'" in body["errors"][0]["message"]
    fine = (await gw.query(gw.viewer, "{ viewer { name name role } }")).json()
    assert fine["data"]["viewer"]["role"] == "VIEWER"


async def test_several_operations_need_an_operation_name(gw: Gateway) -> None:
    """A document with two operations and no operationName fails with BAD_USER_INPUT instead of running the
    first; with operationName the named one runs."""
    document = 'query A { viewer { name } } mutation B { createJob(input: {jobType: "X"}) { id } }'
    body = (await gw.http.post(f"{gw.url}/graphql", json={"query": document},
                               headers={"Authorization": f"Bearer {gw.operator}"})).json()  # fmt: skip
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "operationName" in body["errors"][0]["message"]
    assert body.get("data") is None
    jobs = await gw.jobs.ListJobs(jobs_pb2.ListJobsRequest(), timeout=10)
    assert len(jobs.jobs) == 0
    named = await gw.http.post(f"{gw.url}/graphql", json={"query": document, "operationName": "A"},
                               headers={"Authorization": f"Bearer {gw.operator}"})  # fmt: skip
    assert named.json()["data"]["viewer"]["name"] == "operator"


async def test_malformed_bodies_are_json_400s_with_codes(gw: Gateway) -> None:
    """Invalid UTF-8, bad JSON, a batch, an unsupported content type and a lone surrogate in a variable are
    HTTP 400 in JSON with extensions.code, never a 500 or text/plain."""
    auth = {"Authorization": f"Bearer {gw.viewer}"}
    cases = [
        (b'{"query": "{ viewer { name } }", "x": "\xff\xfe"}', "application/json"),
        (b'{"query": ', "application/json"),
        (b'[{"query": "{ viewer { name } }"}, {"query": "{ viewer { name } }"}]', "application/json"),
        (b"query=%7B%7D", "application/x-www-form-urlencoded"),
        (b'{"query": "query($s: String) { jobs(filter: {search: $s}) { totalCount } }", '
         b'"variables": {"s": "\\ud800"}}', "application/json"),
    ]  # fmt: skip
    for content, content_type in cases:
        response = await gw.http.post(
            f"{gw.url}/graphql", content=content, headers={**auth, "content-type": content_type}
        )
        assert response.status_code == 400, (content, response.text[:200])
        assert response.headers["content-type"].startswith("application/json")
        assert _code(response) == "BAD_USER_INPUT", response.text


async def test_bad_search_text_and_crafted_cursors_are_bad_user_input(gw: Gateway) -> None:
    """A NUL byte in the search filter and a cursor whose sort key is not a date answer BAD_USER_INPUT."""
    import base64
    import json

    query = "query($f: JobFilter, $a: String) { jobs(filter: $f, after: $a) { totalCount } }"
    nul = (await gw.query(gw.viewer, query, {"f": {"search": "a\u0000b"}})).json()
    assert nul["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", nul
    raw = json.dumps({"s": "created_at", "d": True, "k": "not-a-date", "i": "6f7d3a1e-0000-4000-8000-000000000001"})
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    crafted = (await gw.query(gw.viewer, query, {"a": cursor})).json()
    assert crafted["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", crafted


async def test_the_audit_log_records_the_real_address_the_request_id_and_a_masked_target(gw: Gateway) -> None:
    """X-Forwarded-For from an untrusted peer is ignored; the entry's request id is the one the response names;
    an e-mail in the target is masked."""
    response = await gw.http.post(
        f"{gw.url}/graphql",
        json={"query": 'mutation { createApiKey(name: "ci for carol@example.com", role: VIEWER) { key } }'},
        headers={"Authorization": f"Bearer {gw.admin}", "X-Forwarded-For": "203.0.113.9"},
    )
    assert "errors" not in response.json()
    request_id = response.headers["x-request-id"]
    entries = (await gw.query(gw.admin, "{ auditLog(limit: 5) { action target clientIp requestId } }")).json()
    entry = next(e for e in entries["data"]["auditLog"] if e["action"] == "createApiKey")
    assert entry["clientIp"] == "127.0.0.1"
    assert entry["requestId"] == request_id and len(request_id) >= 8
    assert entry["target"] == "ci for c***@example.com"


async def test_forwarded_addresses_count_from_trusted_proxies_only(harness: ServiceHarness) -> None:
    """With the local address configured as a trusted proxy, the forwarded client address is recorded."""
    url = await harness.gateway(trusted_proxies="127.0.0.1", jobs_addr=await harness.jobs())
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
    admin, _ = await KeyStore(pool).create("admin", Role.ADMIN)
    await pool.close()
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {admin}", "X-Forwarded-For": "203.0.113.9"}
        await http.post(f"{url}/graphql", json={"query": 'mutation { createApiKey(name: "x", role: VIEWER) { key } }'},
                        headers=headers)  # fmt: skip
        entries = await http.post(f"{url}/graphql", json={"query": "{ auditLog { clientIp } }"}, headers=headers)
    assert entries.json()["data"]["auditLog"][0]["clientIp"] == "203.0.113.9"


async def test_failed_authentication_is_throttled_per_address(harness: ServiceHarness) -> None:
    """After 5 bad keys from one address in a minute, the next attempt is refused with 429 before any key is
    looked up (even a valid one not seen before); a key verified earlier keeps working, also once its cache
    entry is gone."""
    url = await harness.gateway(auth_failures_per_minute=5, api_key_cache_seconds=0, jobs_addr=await harness.jobs())
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
    known, _ = await KeyStore(pool).create("known", Role.VIEWER)
    fresh, _ = await KeyStore(pool).create("fresh", Role.VIEWER)
    await pool.close()
    async with httpx.AsyncClient() as http:
        post = lambda key: http.post(f"{url}/graphql", json={"query": "{ viewer { name } }"},  # noqa: E731
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert (await post(known)).status_code == 200
        for i in range(5):
            assert (await post(f"b2x_{i:012d}_{'x' * 32}")).status_code == 401
        throttled = await post(fresh)
        assert throttled.status_code == 429 and _code(throttled) == "RATE_LIMITED"
        assert int(throttled.headers["retry-after"]) > 0
        assert (await post(known)).status_code == 200


async def test_the_key_cache_is_bounded_and_evicts_the_oldest_without_forgetting_the_rest(
    database_url: str,
) -> None:
    """With room for 3 keys, verifying 5 keeps the 3 most recent cached; the store never empties its cache."""
    from gateway.app import MIGRATIONS
    from services.common.db import migrate

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await migrate(pool, "gateway", MIGRATIONS)
        store = KeyStore(pool, cache_seconds=60, cache_size=3)
        keys = [(await store.create(f"k{i}", Role.VIEWER))[0] for i in range(5)]
        for key in keys:
            assert await store.verify(key) is not None
        assert store.cached_keys() == 3
        assert all(store.is_cached(k) for k in keys[2:]) and not store.is_cached(keys[0])
    finally:
        await pool.close()


async def test_audit_arguments_are_masked_and_escaped(gw: Gateway) -> None:
    """A cancel reason with an IBAN, a newline and a right-to-left override is stored masked and escaped."""
    job = (await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="X", tenant_id="t"), timeout=10)).job
    reason = "refund DE89370400440532013000\nFAKE ok \u202eexe.pdf"
    cancelled = await gw.query(gw.operator, "mutation($id: ID!, $r: String) { cancelJob(id: $id, reason: $r) { status } }",
                               {"id": job.id, "r": reason})  # fmt: skip
    assert "errors" not in cancelled.json()
    entries = (await gw.query(gw.admin, "{ auditLog(limit: 5) { action arguments } }")).json()["data"]["auditLog"]
    stored = next(e for e in entries if e["action"] == "cancelJob")["arguments"]["reason"]
    assert "370400440532013000" not in stored and "\n" not in stored and "\u202e" not in stored
    assert "\\n" in stored and "\\u202e" in stored
