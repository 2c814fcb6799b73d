"""`b2c monitor …` as a user runs it, against real health, probes, gateway and HTTP targets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.stacks import PASSWORD, SECRET, services_stack
from tests.support import ServiceHarness

B2C = str(Path(sys.executable).parent / "b2c")


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    async def run(self, *args: str, key: str | None = None) -> tuple[int, str, str]:
        env = dict(self.env, **({"B2C_API_KEY": key} if key else {}))
        proc = await asyncio.create_subprocess_exec(
            B2C, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def cli(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Cli, str]]:
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    async with services_stack(harness, tmp_path) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": stack.url, "B2C_API_KEY": stack.operator,
                    "COLUMNS": "160"})  # fmt: skip
        yield Cli(env), stack.viewer


async def test_a_passing_test_prints_each_phase_and_exits_0(cli: tuple[Cli, str]) -> None:
    """`monitor test erp --verbose` lists DNS, TCP, first byte and download, the total and PASSED."""
    runner, _ = cli
    code, out, err = await runner.run("monitor", "test", "erp", "--verbose")
    assert code == 0, err
    for label in (
        "DNS Resolution",
        "TCP Connection",
        "Time to First Byte",
        "Content Download",
        "Total",
        "Status: PASSED",
    ):
        assert label in out, out


async def test_a_failing_test_exits_2_with_the_classified_reason(cli: tuple[Cli, str]) -> None:
    """`monitor test crm` fails with SERVICE_UNAVAILABLE and exit 2; no secret from its URL is printed."""
    runner, _ = cli
    code, out, _ = await runner.run("monitor", "test", "crm")
    assert code == 2 and "FAILED" in out and "SERVICE_UNAVAILABLE" in out
    assert SECRET not in out and PASSWORD not in out


async def test_all_runs_every_service_and_exits_with_the_worst_outcome(cli: tuple[Cli, str]) -> None:
    """`monitor test all --format json` returns a result per service; one failed, so exit 2."""
    runner, _ = cli
    code, out, _ = await runner.run("monitor", "test", "all", "--format", "json")
    results = {r["serviceSlug"]: r["success"] for r in json.loads(out)}
    assert results == {"erp": True, "crm": False} and code == 2


async def test_errors_are_listed_filtered_shown_and_exported(cli: tuple[Cli, str], tmp_path: Path) -> None:
    """After a failed test, `monitor errors` lists it, `--type timeout` hides it, the id shows evidence,
    and --export writes JSON with the evidence but no secrets."""
    runner, _ = cli
    await runner.run("monitor", "test", "crm")
    code, out, _ = await runner.run("monitor", "errors", "crm", "--format", "json")
    errors = json.loads(out)["errors"]
    assert code == 0 and len(errors) == 1 and errors[0]["errorType"] == "SERVICE_UNAVAILABLE"
    code, out, _ = await runner.run("monitor", "errors", "--type", "timeout", "--format", "json")
    assert json.loads(out)["errors"] == []
    other = next(s for s in ("warning", "error", "critical") if s != errors[0]["severity"].lower())
    code, out, _ = await runner.run("monitor", "errors", "--severity", other, "--format", "json")
    assert code == 0 and json.loads(out) == {"totalCount": 0, "errors": []}
    code, out, _ = await runner.run(
        "monitor", "errors", "--severity", f"{other},{errors[0]['severity']}", "--format", "json"
    )
    assert json.loads(out)["totalCount"] == 1
    code, _, err = await runner.run("monitor", "errors", "--severity", "fatal")
    assert code == 2 and "severity" in err
    code, out, _ = await runner.run("monitor", "errors", errors[0]["id"])
    assert code == 0 and "RESPONSE 503" in out and "TIMING" in out
    export = tmp_path / "ticket.json"
    code, _, _ = await runner.run("monitor", "errors", "crm", "--export", str(export))
    text = export.read_text()
    assert code == 0 and json.loads(text)["errors"][0]["response"]["status_code"] == 503
    assert SECRET not in text and PASSWORD not in text


async def test_services_lists_status_and_a_viewer_cannot_run_tests(cli: tuple[Cli, str]) -> None:
    """`monitor services` shows both services; a viewer key gets FORBIDDEN (exit 2) for `monitor test`."""
    runner, viewer = cli
    code, out, _ = await runner.run("monitor", "services")
    assert code == 0 and "enventa ERP (erp)" in out and "CRM Integration (crm)" in out
    code, _, err = await runner.run("monitor", "test", "erp", key=viewer)
    assert code == 2 and "FORBIDDEN" in err


async def test_a_test_report_is_exported_as_pdf_and_errors_as_a_provider_report(
    cli: tuple[Cli, str], tmp_path: Path
) -> None:
    """`monitor test erp --export r.pdf` writes a PDF; `monitor errors crm --report r.txt` the provider template."""
    runner, _ = cli
    pdf = tmp_path / "erp.pdf"
    code, _, err = await runner.run("monitor", "test", "erp", "--export", str(pdf))
    assert code == 0, err
    assert pdf.read_bytes().startswith(b"%PDF")
    await runner.run("monitor", "test", "crm")
    text = tmp_path / "crm.txt"
    code, _, err = await runner.run("monitor", "errors", "crm", "--report", str(text))
    assert code == 0, err
    body = text.read_text()
    assert "503" in body and SECRET not in body and PASSWORD not in body


async def test_resources_list_sampled_services(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the agent sampling erp's metrics endpoint, `monitor resources --format json` shows its figures."""
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    async with services_stack(harness, tmp_path, agent=True) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": stack.url, "B2C_API_KEY": stack.viewer})
        runner = Cli(env)
        rows: list[dict[str, object]] = []
        for _ in range(50):
            code, out, _ = await runner.run("monitor", "resources", "erp", "--format", "json")
            rows = json.loads(out)
            if rows and rows[0]["metrics"]:
                break
            await asyncio.sleep(0.3)
        assert rows[0]["serviceSlug"] == "erp" and rows[0]["metrics"]["queueDepth"] == 23  # type: ignore[index]
        code, out, _ = await runner.run("monitor", "resources")
        assert code in (0, 1) and "erp" in out and "Resources" in out  # 1 while a resource alert is active


async def test_health_shows_the_seed_overview_and_exits_by_overall_status(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once crm's checks fail, `monitor health` draws the overview and exits 1 (degraded) or 2 (offline);
    figures of an unreachable jobs service show as '?' instead of failing the command."""
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    async with services_stack(harness, tmp_path, agent=True) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": stack.url, "B2C_API_KEY": stack.viewer,
                    "COLUMNS": "160"})  # fmt: skip
        runner = Cli(env)
        summary: dict[str, object] = {}
        for _ in range(120):
            code, out, _ = await runner.run("monitor", "health", "--format", "json")
            summary = json.loads(out)
            states = {c["slug"]: c["status"] for c in summary["components"]}  # type: ignore[attr-defined]
            if states.get("erp") == "ONLINE" and states.get("crm") in ("DEGRADED", "OFFLINE"):
                break
            await asyncio.sleep(0.3)
        code, out, _ = await runner.run("monitor", "health", "--detailed")
        assert code == (2 if summary["overallStatus"] == "OFFLINE" else 1)
        assert "B2X System Health" in out and "CRM Integration" in out and "Active Jobs: ?" in out
