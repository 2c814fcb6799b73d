"""A real Prometheus for tests: Debian's `prometheus` binary on a free loopback port with its own data dir."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.common.embedded import free_port


class PrometheusServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.AsyncClient(base_url=url, timeout=10)

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (AssertionError when Prometheus refuses the expression)."""
        response = await self.client.get("/api/v1/query", params={"query": expr})
        body = response.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def get(self, path: str) -> Any:
        response = await self.client.get(path)
        response.raise_for_status()
        return response.json()["data"]

    async def wait_for(self, expr: str, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll an instant query until `predicate(result)` holds; returns that result."""
        result: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(timeout):
                # Prometheus is another process: polling its API is the only way to see a scrape land.
                while not predicate(result := await self.query(expr)):  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
        except TimeoutError:
            raise AssertionError(f"{expr} never matched; last result: {result}") from None
        return result


@contextlib.asynccontextmanager
async def prometheus(
    data_dir: Path, targets: Mapping[str, str], rule_files: Sequence[Path] = (), interval: str = "1s"
) -> AsyncIterator[PrometheusServer]:
    """Start Prometheus scraping `targets` (job name → host:port) every `interval`, with `rule_files`."""
    binary = shutil.which("prometheus")
    assert binary, "the prometheus binary (Debian package prometheus) is not installed; .ci/run installs it"
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a local directory, once per test module
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
        ],
    }
    config_file = data_dir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (data_dir / "prometheus.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}")
    try:
        async with asyncio.timeout(30):
            while True:
                if process.returncode is not None:
                    raise AssertionError("prometheus exited:\n" + (data_dir / "prometheus.log").read_text()[-3000:])
                with contextlib.suppress(httpx.HTTPError):
                    if (await server.client.get("/-/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        yield server
    finally:
        await server.client.aclose()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
