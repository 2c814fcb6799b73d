"""`b2c jobs …` as a user runs it: a real process talking GraphQL to a real gateway and jobs service."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from b2x.monitoring.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc

from gateway.auth import KeyStore, Role
from services.common.embedded import free_port
from tests.support import ServiceHarness

B2C = str(Path(sys.executable).parent / "b2c")
T = 10


@dataclass
class Cli:
    env: dict[str, str]
    jobs: jobs_pb2_grpc.JobsServiceAsyncStub

    async def run(self, *args: str, timeout: float = 30, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            B2C, *args, env={**self.env, **(env or {})}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def job(self, job_type: str = "ERP_STOCK_SYNC", start: bool = True, **kw: object) -> jobs_pb2.SchedulerJob:
        job = (await self.jobs.CreateJob(jobs_pb2.CreateJobRequest(job_type=job_type, **kw), timeout=T)).job  # type: ignore[arg-type]
        if start:
            job = (await self.jobs.StartJob(jobs_pb2.StartJobRequest(job_id=job.id, worker_id="w-1"), timeout=T)).job
        return job


@pytest.fixture
async def cli(harness: ServiceHarness, tmp_path: Path) -> Cli:
    jobs_addr = await harness.jobs()
    url = await harness.gateway(jobs_addr=jobs_addr, health_addr="127.0.0.1:1", probes_addr="127.0.0.1:1")
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=1)
    key, _ = await KeyStore(pool).create("cli", Role.OPERATOR)
    await pool.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
    env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": url, "B2C_API_KEY": key, "COLUMNS": "160"})
    return Cli(env, jobs_pb2_grpc.JobsServiceStub(harness.channel(jobs_addr)))


async def test_list_filters_and_prints_json_or_a_table(cli: Cli) -> None:
    """--status and --type filter; JSON carries full ids; the table shows short ids and progress."""
    running = await cli.job("ERP_ARTICLE_SYNC", total_items=200)
    await cli.jobs.ReportProgress(
        jobs_pb2.ReportProgressRequest(worker_id="w-1", job_id=running.id, processed_items=144, sequence=1), timeout=T
    )
    queued = await cli.job("PIM_IMPORT", start=False)
    code, out, _ = await cli.run("jobs", "list", "--status", "running", "--format", "json")
    assert code == 0
    assert [j["id"] for j in json.loads(out)["jobs"]] == [running.id]
    code, out, _ = await cli.run("jobs", "list")
    assert code == 0 and running.id[:8] in out and queued.id[:8] in out and "72%" in out and "Running" in out
    code, out, _ = await cli.run("jobs", "list", "--type", "PIM_IMPORT", "--format", "json")
    assert [j["id"] for j in json.loads(out)["jobs"]] == [queued.id]


async def test_show_accepts_a_short_id_and_shows_steps_attempts_and_logs(cli: Cli) -> None:
    """`b2c jobs show <8 chars>` resolves the job and prints its detail with the last log lines."""
    job = await cli.job(total_items=10)
    entry = jobs_pb2.LogEntry(sequence=1, level=common_pb2.LOG_LEVEL_WARNING, message="article 7 rejected by ERP")
    entry.timestamp.GetCurrentTime()
    step = jobs_pb2.StepUpdate(index=0, name="load articles", status=jobs_pb2.JOB_STEP_STATUS_RUNNING)
    await cli.jobs.ReportBatch(
        jobs_pb2.ReportBatchRequest(
            worker_id="w-1", reports=[jobs_pb2.JobReport(job_id=job.id, logs=[entry], steps=[step])]
        ),
        timeout=T,
    )
    code, out, err = await cli.run("jobs", "show", job.id[:8])
    assert code == 0, err
    assert job.id in out and "load articles" in out and "article 7 rejected by ERP" in out


async def test_unknown_or_ambiguous_ids_and_bad_options_exit_2_with_a_message(cli: Cli) -> None:
    """Exit 2 and one line, never a traceback, for an unknown id, a non-id and an unknown status."""
    for args, needle in (
        (("jobs", "show", "0000aaaa-0000-4000-8000-000000000000"), "not found"),
        (("jobs", "show", "ffff"), "no job id starts with ffff"),
        (("jobs", "show", "hello"), "is not a job id"),
        (("jobs", "list", "--status", "sleeping"), "unknown status SLEEPING"),
        (("jobs", "list", "--since", "yesterday-ish"), "--since must look like"),
    ):
        code, _, err = await cli.run(*args)
        assert code == 2, (args, err)
        assert needle in err and "Traceback" not in err, (args, err)


async def test_retry_makes_one_attempt_and_says_so_on_a_second_try(cli: Cli) -> None:
    """The first retry queues attempt 2 (exit 0); retrying the same job again points at it (exit 1)."""
    job = await cli.job(max_attempts=1)
    await cli.jobs.FailJob(
        jobs_pb2.FailJobRequest(worker_id="w-1", job_id=job.id, error_message="ERP refused"), timeout=T
    )
    code, out, _ = await cli.run("jobs", "retry", job.id[:8])
    assert code == 0 and "Retry queued" in out and "attempt 2" in out
    code, out, _ = await cli.run("jobs", "retry", job.id)
    assert code == 1 and "already retried" in out


async def test_cancel_of_a_running_job_requests_a_stop_and_of_a_finished_one_is_refused(cli: Cli) -> None:
    """A running job gets a cancel request; a completed one answers FAILED_PRECONDITION with exit 2."""
    job = await cli.job()
    code, out, _ = await cli.run("jobs", "cancel", job.id, "--reason", "wrong catalog")
    assert code == 0 and "requested" in out
    done = await cli.job()
    await cli.jobs.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=done.id), timeout=T)
    code, _, err = await cli.run("jobs", "cancel", done.id)
    assert code == 2 and "already finished" in err and "FAILED_PRECONDITION" in err


async def test_watch_in_json_prints_one_object_per_line_as_jobs_change(cli: Cli) -> None:
    """`--watch --format json` prints the snapshot, then each change as its own JSON line."""
    existing = await cli.job()
    proc = await asyncio.create_subprocess_exec(
        B2C, "jobs", "list", "--watch", "--format", "json", env=cli.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), T))
        assert first == {"type": "snapshot", "job": first["job"]} and first["job"]["id"] == existing.id
        await asyncio.sleep(1.0)  # the subscription is registered
        await cli.jobs.CompleteJob(jobs_pb2.CompleteJobRequest(worker_id="w-1", job_id=existing.id), timeout=T)
        change = json.loads(await asyncio.wait_for(proc.stdout.readline(), T))
        assert change["type"] == "change" and change["change"] == "completed"
        assert change["job"]["id"] == existing.id and change["job"]["status"] == "COMPLETED"
    finally:
        proc.terminate()
        await proc.wait()


async def test_logs_follow_streams_new_lines_and_exits_with_the_job_outcome(cli: Cli) -> None:
    """`logs --follow` prints lines as they arrive and exits 2 when the job fails."""
    job = await cli.job()
    proc = await asyncio.create_subprocess_exec(
        B2C, "jobs", "logs", job.id, "--follow", "--format", "json", env=cli.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(1.5)
    lines = []
    for seq in (1, 2):
        entry = jobs_pb2.LogEntry(sequence=seq, level=common_pb2.LOG_LEVEL_INFO, message=f"batch {seq} written")
        entry.timestamp.GetCurrentTime()
        lines.append(entry)
    await cli.jobs.ReportBatch(
        jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[jobs_pb2.JobReport(job_id=job.id, logs=lines)]), timeout=T
    )
    await asyncio.sleep(0.5)
    await cli.jobs.FailJob(jobs_pb2.FailJobRequest(worker_id="w-1", job_id=job.id, error_message="ERP gone"), timeout=T)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    printed = [json.loads(line)["message"] for line in out.decode().splitlines()]
    assert printed == ["batch 1 written", "batch 2 written"], err.decode()
    assert proc.returncode == 2


async def test_an_unreachable_api_exits_3(cli: Cli) -> None:
    """With nothing listening at the API URL the CLI says so and exits 3."""
    env = dict(cli.env, B2C_API_URL=f"http://127.0.0.1:{free_port()}")
    cli_down = Cli(env, cli.jobs)
    code, _, err = await cli_down.run("jobs", "list")
    assert code == 3 and "cannot reach the API" in err


async def test_a_wrong_key_exits_2_and_explains(cli: Cli) -> None:
    """An unknown key is UNAUTHENTICATED: exit 2 with a hint to set a key."""
    env = dict(cli.env, B2C_API_KEY="b2x_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
    code, _, err = await Cli(env, cli.jobs).run("jobs", "list")
    assert code == 2 and "UNAUTHENTICATED" in err and "b2c auth token" in err


async def test_pii_in_logs_parameters_and_cancel_reasons_is_masked_for_cli_users(cli: Cli) -> None:
    """An IBAN a job logged, received as a parameter, or an operator typed as cancel reason never appears in
    `b2c jobs logs` or `b2c jobs show`; the country and check digits stay to tell which account it was."""
    from google.protobuf.struct_pb2 import Struct

    parameters = Struct()
    parameters.update({"account": "DE89370400440532013000"})
    job = await cli.job(parameters=parameters)
    entry = jobs_pb2.LogEntry(sequence=1, level=common_pb2.LOG_LEVEL_INFO, message="refund to DE89370400440532013000")
    entry.timestamp.GetCurrentTime()
    entry.context.update({"phone": "+49 170 1234567"})
    await cli.jobs.ReportBatch(
        jobs_pb2.ReportBatchRequest(worker_id="w-1", reports=[jobs_pb2.JobReport(job_id=job.id, logs=[entry])]),
        timeout=T,
    )
    code, _, err = await cli.run("jobs", "cancel", job.id, "--reason", "refund DE89370400440532013000 twice")
    assert code == 0, err
    printed = ""
    for args in (("jobs", "logs", job.id, "--format", "json"), ("jobs", "show", job.id, "--format", "json")):
        code, out, err = await cli.run(*args)
        assert code == 0, err
        printed += out
    assert "370400440532013000" not in printed and "1234567" not in printed
    assert "DE89" in printed


async def test_the_list_fits_80_columns_without_cutting_its_figures(cli: Cli) -> None:
    """In an 80-column terminal a job with a long type and tenant keeps its id, status, percentage and ETA whole
    (the type and tenant wrap, the bar and start time give way)."""
    job = await cli.job("ERP_STOCK_SYNC_NIGHTLY_FULL_RUN", tenant_id="tenant-acme-handelsgesellschaft", total_items=200)
    await cli.jobs.ReportProgress(
        jobs_pb2.ReportProgressRequest(worker_id="w-1", job_id=job.id, processed_items=91, sequence=1), timeout=T
    )
    code, out, _ = await cli.run("jobs", "list", env={"COLUMNS": "80"})
    lines = out.splitlines()
    assert code == 0 and all(len(line) <= 80 for line in lines), out
    row = next(line for line in lines if job.id[:8] in line)
    assert "46%" in row and "Running" in row and "…" not in out, out
