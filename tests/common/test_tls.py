"""TLS with certificates made by trustme: the gateway over HTTPS, gRPC between services, and the errors
that name a wrong setting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
import trustme
from b2x.monitoring.v1 import jobs_pb2, jobs_pb2_grpc

from gateway.app import create_app
from gateway.auth import KeyStore, Role
from gateway.main import server_config
from gateway.settings import GatewaySettings
from services.common.channels import open_channel
from services.common.errors import StartupError
from services.common.tls import GrpcTLS
from services.jobs.main import build_server
from services.jobs.sdk import JobMonitor
from tests.support import ServiceHarness, serving


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a certificate for 127.0.0.1 and localhost signed by it, and an unrelated CA."""
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    (folder / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    trustme.CA().cert_pem.write_to_path(str(folder / "other-ca.pem"))
    return Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem", folder / "other-ca.pem")


@contextlib.asynccontextmanager
async def https_gateway(settings: GatewaySettings) -> AsyncIterator[str]:
    async with serving(server_config(settings, create_app(settings), host="127.0.0.1", port=0)) as port:
        yield f"https://127.0.0.1:{port}"


async def test_the_gateway_serves_https_with_tls_1_2_at_least(harness: ServiceHarness, pki: Pki) -> None:
    """With B2X_TLS_CERT_FILE / B2X_TLS_KEY_FILE the gateway answers over HTTPS a client that trusts the
    CA (TLS 1.3 negotiated by default, 1.2 accepted); a TLS 1.1 client, an untrusting client and plain
    HTTP get no answer."""
    settings = harness.settings_for(GatewaySettings, tls_cert_file=str(pki.cert), tls_key_file=str(pki.key))
    context = settings.ssl_context()
    assert context is not None and context.minimum_version is ssl.TLSVersion.TLSv1_2
    async with https_gateway(settings) as url:
        trusting = ssl.create_default_context(cafile=str(pki.ca))
        async with httpx.AsyncClient(verify=trusting) as client:
            response = await client.get(f"{url}/health/live")
            assert response.status_code == 200 and response.json() == {"status": "ok"}
            metrics = await client.get(f"{url}/metrics")
            assert 'b2x_http_requests_total{method="GET",route="/health/live",status="200"}' in metrics.text
        _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]), ssl=trusting)
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        writer.close()

        tls12 = ssl.create_default_context(cafile=str(pki.ca))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        async with httpx.AsyncClient(verify=tls12) as client:
            assert (await client.get(f"{url}/health/live")).status_code == 200

        tls11 = ssl.create_default_context(cafile=str(pki.ca))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point: an outdated client
            tls11.minimum_version = ssl.TLSVersion.TLSv1
            tls11.maximum_version = ssl.TLSVersion.TLSv1_1
        tls11.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(verify=tls11) as client:
                await client.get(f"{url}/health/live")

        untrusting = ssl.create_default_context(cafile=str(pki.other_ca))
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            async with httpx.AsyncClient(verify=untrusting) as client:
                await client.get(f"{url}/health/live")
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                await client.get(url.replace("https://", "http://") + "/health/live")


def test_a_wrong_tls_setting_stops_the_gateway_with_a_line_naming_it(pki: Pki, tmp_path: Path) -> None:
    """Half a pair, an unreadable file, a file that is not PEM and a key of another certificate each
    raise StartupError naming the variable."""
    base = {"database_url": "postgresql://x@127.0.0.1/b2x", "redis_url": "redis://127.0.0.1:6379/0"}
    with pytest.raises(StartupError, match="B2X_TLS_CERT_FILE and B2X_TLS_KEY_FILE must be set together"):
        GatewaySettings(**base, tls_cert_file=str(pki.cert)).ssl_context()
    with pytest.raises(StartupError, match="B2X_TLS_KEY_FILE: cannot read"):
        GatewaySettings(**base, tls_cert_file=str(pki.cert), tls_key_file=str(tmp_path / "nope.pem")).ssl_context()
    (tmp_path / "text.pem").write_text("not a certificate")
    with pytest.raises(StartupError, match=r"B2X_TLS_CERT_FILE: .* is not a PEM file"):
        GatewaySettings(**base, tls_cert_file=str(tmp_path / "text.pem"), tls_key_file=str(pki.key)).ssl_context()
    other = trustme.CA().issue_cert("localhost")
    other.private_key_pem.write_to_path(str(tmp_path / "other-key.pem"))
    with pytest.raises(StartupError, match="B2X_TLS_KEY_FILE: the key does not match B2X_TLS_CERT_FILE"):
        GatewaySettings(**base, tls_cert_file=str(pki.cert), tls_key_file=str(tmp_path / "other-key.pem")).ssl_context()
    with pytest.raises(StartupError, match="B2X_GRPC_TLS_CLIENT_AUTH needs B2X_GRPC_TLS_CA_FILE"):
        GrpcTLS(str(pki.cert), str(pki.key), client_auth=True).check()


async def start_jobs(harness: ServiceHarness, tls: GrpcTLS) -> str:
    resources = await harness.resources("jobs")
    server = build_server(resources, harness.settings)
    port = await server.start("127.0.0.1", 0, tls)
    harness._stack.push_async_callback(server.stop, 0)
    return f"localhost:{port}"


async def create(channel: grpc.aio.Channel) -> str:
    stub = jobs_pb2_grpc.JobsServiceStub(channel)
    reply = await stub.CreateJob(jobs_pb2.CreateJobRequest(job_type="ERP_STOCK_SYNC"), timeout=5)
    return str(reply.job.status)


async def test_services_speak_grpc_over_tls_and_verify_each_other(harness: ServiceHarness, pki: Pki) -> None:
    """A service with a certificate accepts clients that trust its CA; a plaintext client and one trusting
    another CA are refused (UNAVAILABLE)."""
    address = await start_jobs(harness, GrpcTLS(str(pki.cert), str(pki.key)))
    async with open_channel(address, GrpcTLS(ca_file=str(pki.ca)), target="jobs") as channel:
        assert await create(channel) == str(jobs_pb2.JOB_STATUS_QUEUED)
    for channel in (
        grpc.aio.insecure_channel(address),
        open_channel(address, GrpcTLS(ca_file=str(pki.other_ca))),
    ):
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await create(channel)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_with_client_auth_a_service_admits_only_clients_with_a_certificate_of_the_ca(
    harness: ServiceHarness, pki: Pki
) -> None:
    """Mutual TLS: a client presenting the CA's certificate gets in, one without a certificate does not."""
    address = await start_jobs(harness, GrpcTLS(str(pki.cert), str(pki.key), str(pki.ca), client_auth=True))
    async with open_channel(address, GrpcTLS(str(pki.cert), str(pki.key), str(pki.ca))) as channel:
        assert await create(channel) == str(jobs_pb2.JOB_STATUS_QUEUED)
    async with open_channel(address, GrpcTLS(ca_file=str(pki.ca))) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await create(channel)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_the_gateway_reaches_a_tls_service_when_given_the_ca(harness: ServiceHarness, pki: Pki) -> None:
    """`/health/ready` of a gateway with B2X_GRPC_TLS_CA_FILE reports the TLS jobs service as reachable."""
    address = await start_jobs(harness, GrpcTLS(str(pki.cert), str(pki.key)))
    url = await harness.gateway(jobs_addr=address, grpc_tls_ca_file=str(pki.ca))
    async with httpx.AsyncClient() as client:
        checks = (await client.get(f"{url}/health/ready")).json()["checks"]
    assert checks["jobs"] == "ok"


async def test_the_job_sdk_reports_to_a_jobs_service_that_requires_mutual_tls(
    harness: ServiceHarness, pki: Pki
) -> None:
    """A worker's JobMonitor given the CA and a client certificate creates, starts and completes a job on a
    jobs service that serves TLS and requires client certificates."""
    address = await start_jobs(harness, GrpcTLS(str(pki.cert), str(pki.key), str(pki.ca), client_auth=True))
    tls = GrpcTLS(str(pki.cert), str(pki.key), str(pki.ca))
    async with JobMonitor(address, "tls-worker", flush_interval=0.05, tls=tls) as monitor:
        info = await monitor.create_job("ERP_STOCK_SYNC", total_items=2)
        handle = monitor.attach(info.id)
        handle.start()
        handle.progress(2, succeeded=2)
        handle.complete("done")
    # Leaving the block delivered everything reported.
    async with open_channel(address, tls) as channel:
        job = await jobs_pb2_grpc.JobsServiceStub(channel).GetJob(jobs_pb2.GetJobRequest(job_id=info.id), timeout=5)
    assert job.job.status == jobs_pb2.JOB_STATUS_COMPLETED and job.job.worker_id == "tls-worker"


async def run_b2c(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "b2c"), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_verifies_the_gateways_certificate_against_its_ca_file(
    harness: ServiceHarness, pki: Pki, tmp_path: Path
) -> None:
    """`b2c jobs list` over HTTPS: refused with exit 3 and a hint while the CA is unknown; works with
    --ca-file and with the ca-file config key; `config show` names the file."""
    jobs_addr = await harness.jobs()
    settings = harness.settings_for(
        GatewaySettings, jobs_addr=jobs_addr, tls_cert_file=str(pki.cert), tls_key_file=str(pki.key)
    )
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
    async with https_gateway(settings) as url:
        key, _ = await KeyStore(pool).create("tls-cli", Role.VIEWER)
        await pool.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2C_", "B2X_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": url, "B2C_API_KEY": key})

        code, _, err = await run_b2c(env, "jobs", "list")
        assert code == 3 and "TLS certificate is not trusted" in err and "--ca-file" in err, err
        code, out, err = await run_b2c(env, "--ca-file", str(pki.ca), "jobs", "list", "--format", "json")
        assert code == 0 and json.loads(out)["jobs"] == [], err
        code, _, err = await run_b2c(env, "config", "set", "ca-file", str(pki.ca))
        assert code == 0, err
        code, out, err = await run_b2c(env, "jobs", "list", "--format", "json")
        assert code == 0, err
        code, out, _ = await run_b2c(env, "config", "show")
        assert f"ca-file      {pki.ca}" in out
        code, _, err = await run_b2c(env, "config", "set", "ca-file", str(tmp_path / "missing.pem"))
        assert code == 2 and "is not a readable file" in err
