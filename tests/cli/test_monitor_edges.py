"""`b2c monitor …` rough edges found by a new user, against a real stack: each one a behaviour to keep."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from tests.cli.test_monitor_cli import Cli
from tests.stacks import SECRET, services_stack
from tests.support import ServiceHarness


@pytest.fixture
async def pim_stack(
    harness: ServiceHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Cli, Path]]:
    """The erp/crm stack plus `pim` over https with its own ca_file."""
    monkeypatch.setenv("ERP_TOKEN", SECRET)
    ca_file = tmp_path / "pim-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    extra = (
        f"  - {{slug: pim, name: PIM, type: PIM, endpoint: 'https://127.0.0.1:{{port}}/health', max_retries: 0,"
        f" http: {{ca_file: '{ca_file}'}}}}\n"
    )
    async with services_stack(harness, tmp_path, extra=extra) as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("B2X_", "B2C_"))}
        env.update({"B2C_CONFIG": str(tmp_path / "b2c.json"), "B2C_API_URL": stack.url, "B2C_API_KEY": stack.operator,
                    "COLUMNS": "80"})  # fmt: skip
        yield Cli(env), ca_file


async def test_test_all_reports_every_service_when_one_ca_file_is_gone(pim_stack: tuple[Cli, Path]) -> None:
    """A ca_file removed after start fails only that service's test, as SSL_HANDSHAKE_FAILED naming the file;
    `monitor test all` still shows erp and crm, and `monitor test pim` exits 2 (not 3, "database unavailable")."""
    runner, ca_file = pim_stack
    ca_file.unlink()
    code, out, err = await runner.run("monitor", "test", "all", "--format", "json")
    results = {r["serviceSlug"]: r for r in json.loads(out)}
    assert set(results) == {"erp", "crm", "pim"} and code == 2, err
    assert results["erp"]["success"] and not results["pim"]["success"]
    assert results["pim"]["errorType"] == "SSL_HANDSHAKE_FAILED" and str(ca_file) in results["pim"]["errorMessage"]
    code, out, err = await runner.run("monitor", "test", "pim")
    assert code == 2 and "database" not in err + out and "SSL_HANDSHAKE_FAILED" in out
