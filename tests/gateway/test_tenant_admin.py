"""A tenant-scoped admin key stays inside its tenant: keys it makes, keys it sees and revokes, audit it reads."""

from __future__ import annotations

from b2x.monitoring.v1 import jobs_pb2

from tests.gateway.conftest import Gateway

CREATE = "mutation($name: String!, $role: Role!, $tenant: String) { createApiKey(name: $name, role: $role, " \
         "tenantId: $tenant) { key apiKey { id role tenantId } } }"  # fmt: skip
KEYS = "{ apiKeys { id name tenantId } }"
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }"
AUDIT = "{ auditLog(limit: 200) { action target tenantId keyName arguments outcome } }"
JOBS = "{ jobs(first: 100) { totalCount nodes { tenantId } } }"


async def _key_id(gw: Gateway, name: str) -> str:
    keys = (await gw.query(gw.admin, KEYS)).json()["data"]["apiKeys"]
    return str(next(k["id"] for k in keys if k["name"] == name))


async def test_a_tenant_admin_creates_keys_only_for_its_own_tenant(gw: Gateway) -> None:
    """Without a tenant the new key gets the admin's tenant (it never sees other tenants' jobs); asking for
    another tenant is FORBIDDEN."""
    for tenant in ("tenant-a", "tenant-b", "tenant-b"):
        await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", tenant_id=tenant), timeout=10)
    made = (await gw.query(gw.tenant_admin, CREATE, {"name": "escape", "role": "ADMIN"})).json()
    assert made["data"]["createApiKey"]["apiKey"]["tenantId"] == "tenant-a", made
    escaped = made["data"]["createApiKey"]["key"]
    jobs = (await gw.query(escaped, JOBS)).json()["data"]["jobs"]
    assert jobs["totalCount"] == 1 and {n["tenantId"] for n in jobs["nodes"]} == {"tenant-a"}
    other = (await gw.query(gw.tenant_admin, CREATE, {"name": "west", "role": "VIEWER", "tenant": "tenant-b"})).json()
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert other["data"] is None


async def test_a_tenant_admin_lists_and_revokes_only_its_tenants_keys(gw: Gateway) -> None:
    """apiKeys shows tenant-a's keys only; revoking a global key answers NOT_FOUND and leaves it working."""
    listed = (await gw.query(gw.tenant_admin, KEYS)).json()["data"]["apiKeys"]
    assert {k["tenantId"] for k in listed} == {"tenant-a"}
    assert {k["name"] for k in listed} == {"tenant_viewer", "tenant_operator", "tenant_admin"}
    global_operator = await _key_id(gw, "operator")
    refused = (await gw.query(gw.tenant_admin, REVOKE, {"id": global_operator})).json()
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await gw.query(gw.operator, "{ viewer { name } }")).json()["data"]["viewer"]["name"] == "operator"
    own = await _key_id(gw, "tenant_viewer")
    revoked = (await gw.query(gw.tenant_admin, REVOKE, {"id": own})).json()
    assert revoked["data"]["revokeApiKey"]["revokedAt"]


async def test_a_tenant_admin_reads_only_its_tenants_audit_entries(gw: Gateway) -> None:
    """Entries made by other tenants' keys or about other tenants' jobs never reach a tenant admin; a global
    admin sees them all."""
    west = (
        await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", tenant_id="tenant-b"), timeout=10)
    ).job
    north = (
        await gw.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC", tenant_id="tenant-a"), timeout=10)
    ).job
    cancel = "mutation($id: ID!, $r: String) { cancelJob(id: $id, reason: $r) { status } }"
    assert "errors" not in (await gw.query(gw.operator, cancel, {"id": west.id, "r": "west secret"})).json()
    assert "errors" not in (await gw.query(gw.operator, cancel, {"id": north.id, "r": "north"})).json()
    assert (
        "errors"
        not in (await gw.query(gw.tenant_operator, 'mutation { createJob(input: {jobType: "X"}) { id } }')).json()
    )
    seen = (await gw.query(gw.tenant_admin, AUDIT)).json()["data"]["auditLog"]
    assert {e["target"] for e in seen if e["action"] == "cancelJob"} == {north.id}
    assert "west secret" not in str(seen)
    assert any(e["action"] == "createJob" and e["keyName"] == "tenant_operator" for e in seen)
    everything = (await gw.query(gw.admin, AUDIT)).json()["data"]["auditLog"]
    assert {e["target"] for e in everything if e["action"] == "cancelJob"} == {north.id, west.id}


async def test_no_key_can_create_a_key_with_a_role_above_its_own(gw: Gateway) -> None:
    """Only admins create keys: an operator asking for an admin key is FORBIDDEN, and so is a viewer."""
    for key in (gw.operator, gw.tenant_operator, gw.viewer):
        body = (await gw.query(key, CREATE, {"name": "up", "role": "ADMIN"})).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
