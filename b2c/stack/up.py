"""`b2c up`: the whole stack on one machine, supervised.

Order: PostgreSQL and Redis (embedded unless B2X_DATABASE_URL / B2X_REDIS_URL are set), then the
jobs, health and probes services (each its own process, ready when grpc.health answers SERVING),
then the gateway (ready when /health/ready says so), then the demo feeder with --demo (whose simulated
ERP, PIM and CRM endpoints start first, so the first probes find them). A part that
dies is restarted with backoff; one that keeps dying stops the stack. Ctrl-C (or SIGTERM) stops
everything in reverse order. A second `b2c up` on the same data directory keeps the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from b2c.config import CliConfig
from b2c.errors import CliError, Exit
from b2c.stack.demo.systems import SYSTEMS
from b2c.stack.settings import StackPorts, StackSettings
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis, port_is_free
from services.common.errors import EXIT_CONFIG, StartupError

DATABASE = "b2x"
PREFERRED_PG_PORT = 55432
PREFERRED_REDIS_PORT = 56379
START_TIMEOUT = 90.0
MAX_RESTARTS = 5


def check_free(ports: StackPorts, demo: bool = False) -> None:
    """Fail before starting anything when two parts are planned on one port or a port is taken, naming the
    parts and their variables. All planned ports are checked together: the stack moved onto the demo
    endpoints' defaults collides with them even though each port is free now."""
    planned = ports.planned(demo)
    first: dict[int, tuple[str, str]] = {}
    for what, port, var in planned:
        if port == 0:  # metrics off
            continue
        if port in first:
            other, other_var = first[port]
            raise CliError(f"port {port} is planned for both {other} ({other_var}) and {what} ({var}); "
                           "move one of them")  # fmt: skip
        first[port] = (what, var)
    for what, port, var in planned:
        if port and not port_is_free(port, "127.0.0.1"):
            if what.startswith("demo"):
                raise CliError(f"port {port} ({what}) is already in use; set {var} to move it")
            raise CliError(f"port {port} ({what}) is already in use — is another stack running? Set {var} to move it")


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(f"b2c up: {message}", file=sys.stderr, flush=True)


@dataclass
class Part:
    """One supervised child process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready: str  # "grpc:<port>" or "http:<url>" or "none"
    process: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    restarts: list[float] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None

    def last_line(self) -> str:
        for line in reversed(self.tail):
            if line.strip():
                return line.strip()[:400]
        return f"no output (see {self.log_path})"


class Stack:
    def __init__(self, settings: StackSettings, demo: bool, stream_logs: bool) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.demo = demo
        self.stream_logs = stream_logs
        self.logs_dir = settings.data_dir / "logs"
        self.inbox_dir = settings.data_dir / "demo-inbox"
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.parts: list[Part] = []
        self.stopping = asyncio.Event()
        self.failed: str | None = None
        self._lock_handle: IO[str] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def lock(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_dir / "b2c-up.lock", "a+")  # noqa: SIM115 - held for the stack's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise CliError(f"another `b2c up` (pid {owner}) is using {self.data_dir}; stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle

    async def start_databases(self) -> tuple[str, str]:
        database_url = self.settings.database_url
        redis_url = self.settings.redis_url
        taken = {port for _, port, _ in self.settings.ports.planned(self.demo)}
        if not database_url:
            port = PREFERRED_PG_PORT if PREFERRED_PG_PORT not in taken and port_is_free(PREFERRED_PG_PORT) else 0
            try:
                self.postgres = await asyncio.to_thread(
                    EmbeddedPostgres.start, self.data_dir / "postgres" / "data", port
                )
                database_url = await asyncio.to_thread(self.postgres.ensure_database, DATABASE)
            except StartupError as error:
                raise CliError(f"embedded PostgreSQL failed to start: {error}") from None
            say(f"  PostgreSQL  {database_url}  (embedded, data in {self.data_dir / 'postgres'})")
        else:
            say(f"  PostgreSQL  {_hide_password(database_url)}  (from B2X_DATABASE_URL)")
        if not redis_url:
            port = (
                PREFERRED_REDIS_PORT if PREFERRED_REDIS_PORT not in taken and port_is_free(PREFERRED_REDIS_PORT) else 0
            )
            try:
                self.redis = await asyncio.to_thread(EmbeddedRedis.start, self.data_dir / "redis", port)
            except StartupError as error:
                raise CliError(f"embedded Redis failed to start: {error}") from None
            redis_url = self.redis.url()
            say(f"  Redis       {redis_url}  (embedded)")
        else:
            say(f"  Redis       {_hide_password(redis_url)}  (from B2X_REDIS_URL)")
        return database_url, redis_url

    async def database_roles(self, database_url: str) -> dict[str, str]:
        """Each service's own DSN (its role owns its schema only: services.common.roles); passwords are kept
        in the data directory. A B2X_DATABASE_URL whose user may not create roles is shared, with a warning."""
        from services.common.roles import DatabaseUnreachable, load_passwords, provision  # noqa: PLC0415

        passwords = load_passwords(self.data_dir / "db-roles.json")
        try:
            return await provision(database_url, passwords)
        except DatabaseUnreachable as error:
            if self.postgres is not None:
                raise CliError(f"embedded PostgreSQL: {error}") from None
            return {}  # the services say which server they cannot reach, naming it
        except StartupError as error:
            if self.postgres is not None:
                raise CliError(f"embedded PostgreSQL: {error}") from None
            warn(f"{error}; every service connects as the B2X_DATABASE_URL user. Run `python -m "
                 "services.common.roles --admin-url …` as an administrator for one role per service")  # fmt: skip
            return {}

    def plan(
        self, database_url: str, redis_url: str, ports: StackPorts, service_dsns: dict[str, str] | None = None
    ) -> None:
        env = dict(self.settings.environ)
        env.update(ports.env())
        env.update(
            {
                "B2X_DATABASE_URL": database_url,
                "B2X_REDIS_URL": redis_url,
                "PYTHONUNBUFFERED": "1",
                "B2X_LOG_FORMAT": self.settings.log_format,
            }
        )
        # Out of the box the stack watches its own PostgreSQL, Redis and services (ADR 0020).
        env.setdefault("B2X_HEALTH_SELF_MONITORING", "true")
        if self.demo:
            from b2c.stack.demo.config import demo_environment, write_demo_config  # noqa: PLC0415

            config = write_demo_config(self.data_dir, ports, database_url=database_url, redis_url=redis_url)
            env.setdefault("B2X_CONFIG_FILE", str(config))
            env.update(demo_environment())
            env.setdefault("B2X_DEMO_INBOX_DIR", str(self.inbox_dir))
        py = sys.executable
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.demo:
            first = ports.demo[SYSTEMS[0].slug]
            self.parts.append(
                Part("demo-endpoints", [py, "-m", "b2c.stack.demo.endpoints"], env,
                     self.logs_dir / "demo-endpoints.log", f"tcp:{ports.local_host}:{first}")
            )  # fmt: skip
            self.parts.append(
                Part("demo-inbox", [py, "-m", "b2c.stack.demo.inbox"], env, self.logs_dir / "demo-inbox.log",
                     f"tcp:{ports.local_host}:{ports.demo_smtp}")
            )  # fmt: skip
        dsns = service_dsns or {}

        def env_of(service: str) -> dict[str, str]:
            return {**env, "B2X_DATABASE_URL": dsns.get(service, database_url)}

        for name, module, port in (
            ("jobs", "services.jobs", ports.jobs),
            ("health", "services.health", ports.health),
            ("probes", "services.probes", ports.probes),
        ):
            self.parts.append(
                Part(name, [py, "-m", module], env_of(name), self.logs_dir / f"{name}.log", f"grpc:{port}")
            )
        self.parts.append(
            Part(
                "gateway",
                [py, "-m", "gateway"],
                env_of("gateway"),
                self.logs_dir / "gateway.log",
                f"http:{ports.api_url}/health/ready",
            )
        )
        if self.demo:
            self.parts.append(
                Part("demo", [py, "-m", "b2c.stack.demo.worker"], env, self.logs_dir / "demo.log", "none")
            )

    async def spawn(self, part: Part) -> None:
        part.process = await asyncio.create_subprocess_exec(
            *part.argv,
            env=part.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        )
        part.pump = asyncio.create_task(self._pump(part))

    async def _pump(self, part: Part) -> None:
        assert part.process is not None
        assert part.process.stdout is not None
        with part.log_path.open("ab") as log:
            async for raw in part.process.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip()
                part.tail.append(line)
                if self.stream_logs:
                    print(f"[{part.name}] {line}", flush=True)

    async def wait_ready(self, part: Part, timeout: float = START_TIMEOUT) -> None:
        assert part.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if part.process.returncode is not None:
                if part.pump:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(part.pump, 2)
                raise CliError(f"the {part.name} service failed to start: {part.last_line()}")
            if await _is_ready(part.ready):
                return
            await asyncio.sleep(0.2)
        raise CliError(f"the {part.name} service did not become ready within {timeout:.0f} s: {part.last_line()}")

    async def supervise(self) -> None:
        """Restart parts that die; give up on one that dies five times in a minute."""
        while not self.stopping.is_set():
            waits = {asyncio.create_task(p.process.wait()): p for p in self.parts if p.process is not None}
            stop = asyncio.create_task(self.stopping.wait())
            done, pending = await asyncio.wait([*waits, stop], return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if self.stopping.is_set():
                return
            for task in done:
                part = waits.get(task)
                if part is None:
                    continue
                if task.result() == EXIT_CONFIG:
                    # Restarting cannot fix a configuration error: stop now and show it.
                    self.failed = f"the {part.name} service stopped on a configuration error: {part.last_line()}"
                    self.stopping.set()
                    return
                now = time.monotonic()
                part.restarts = [t for t in part.restarts if now - t < 60] + [now]
                if len(part.restarts) > MAX_RESTARTS:
                    self.failed = f"the {part.name} service keeps exiting: {part.last_line()}"
                    self.stopping.set()
                    return
                warn(f"{part.name} exited with status {task.result()}: {part.last_line()}; restarting "
                     f"({len(part.restarts)}/{MAX_RESTARTS})")  # fmt: skip
                await asyncio.sleep(min(2 ** len(part.restarts) / 4, 5))
                await self.spawn(part)

    async def stop(self) -> None:
        """Children in reverse order (SIGTERM, then SIGKILL after a grace), then Redis, then PostgreSQL."""
        for part in reversed(self.parts):
            proc = part.process
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            if part.pump:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(part.pump, 2)
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)


async def _is_ready(check: str) -> bool:
    kind, _, target = check.partition(":")
    if kind == "none":
        return True
    if kind == "tcp":
        host, _, port = target.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), 1)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True
    if kind == "grpc":
        import grpc  # noqa: PLC0415
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

        async with grpc.aio.insecure_channel(f"127.0.0.1:{target}") as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    import httpx  # noqa: PLC0415

    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(target)).status_code == 200
    except httpx.HTTPError:
        return False


def _hide_password(url: str) -> str:
    from services.common.masking import sanitize_url  # noqa: PLC0415

    return sanitize_url(url)


async def _admin_key(database_url: str, data_dir: Path) -> str:
    """Reuse the key of the last `b2c up` if it still works, else create one; kept in data_dir (0600)."""
    from gateway.auth import KeyStore, Role  # noqa: PLC0415
    from services.common.db import create_pool  # noqa: PLC0415

    key_file = data_dir / "admin.key"
    pool = await create_pool(database_url, application_name="b2c-up", min_size=1, max_size=2)
    try:
        keys = KeyStore(pool, cache_seconds=0)
        if key_file.exists():
            existing = key_file.read_text().strip()
            if await keys.verify(existing) is not None:
                return existing
        plain, _ = await keys.create("b2c up admin", Role.ADMIN, None, created_by="b2c up")
    finally:
        await pool.close()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(plain + "\n")
    return plain


async def _run(stack: Stack) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stack.stopping.set)
    ports = stack.settings.ports
    try:
        check_free(ports, stack.demo)
        say("Starting B2X Monitoring…")
        database_url, redis_url = await stack.start_databases()
        stack.plan(database_url, redis_url, ports, await stack.database_roles(database_url))
        services = [p for p in stack.parts if p.ready.startswith(("grpc:", "tcp:"))]
        for part in services:
            await stack.spawn(part)
        await _first_of(asyncio.gather(*(stack.wait_ready(p) for p in services)), stack.stopping)
        say(f"  Services    jobs :{ports.jobs} · health :{ports.health} · probes :{ports.probes} (gRPC, reflection)")
        gateway = next(p for p in stack.parts if p.name == "gateway")
        await stack.spawn(gateway)
        await _first_of(stack.wait_ready(gateway), stack.stopping)
        key = await _admin_key(database_url, stack.data_dir)
        config = CliConfig.load()
        config.api_url, config.api_key = ports.api_url, key
        saved = config.save()
        for part in stack.parts:
            if part.process is None:
                await stack.spawn(part)
        # The key travels in the URL fragment, which browsers never send to a server; the app drops it from the
        # address bar and history at once and keeps it for the tab only.
        say(f"  Dashboard   {ports.api_url}/#key={key}  (open to sign in; the link carries the admin key)")
        say(f"  GraphQL     {ports.api_url}/graphql  (GraphiQL in a browser; subscriptions over graphql-transport-ws)")
        say(f"  Metrics     {ports.api_url}/metrics · services :{ports.jobs_metrics} :{ports.health_metrics} "
            f":{ports.probes_metrics}")  # fmt: skip
        say(f"  Admin key   {key}")
        say(f"              saved to {saved}; `b2c jobs list` uses it")
        say(f"  Logs        {stack.logs_dir}")
        if stack.demo:
            say("  Demo        simulated ERP/PIM/CRM endpoints and a stream of sample jobs are running")
            inbox = stack.inbox_dir
            say(f"  Alerts to   e-mail {inbox / 'mail'}/*.eml · webhooks {inbox / 'webhooks.jsonl'}")
            say(f"              both listed at http://{ports.local_host}:{ports.demo_webhook}/ (demo inbox)")
        say("B2X Monitoring is up. Press Ctrl-C to stop.")
        await stack.supervise()
    except CliError as error:
        stack.failed = error.message
    finally:
        if stack.parts or stack.postgres or stack.redis:
            say("Stopping…")
        await stack.stop()
    if stack.failed:
        warn(stack.failed)
        return int(Exit.ERROR)
    say("Stopped.")
    return 0


async def _first_of(work: Awaitable[Any], stopping: asyncio.Event) -> None:
    """Await `work` unless Ctrl-C comes first."""
    task = asyncio.ensure_future(work)
    stop = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        stop.cancel()
        task.result()
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, CliError):
        await task
    raise CliError("interrupted while starting")


def run_stack(demo: bool, data_dir: str | None, stream_logs: bool) -> int:
    settings = StackSettings.from_env(data_dir=Path(data_dir).expanduser().resolve() if data_dir else None)
    stack = Stack(settings, demo, stream_logs)
    try:
        stack.lock()
    except CliError as error:
        warn(error.message)
        return int(Exit.ERROR)
    return asyncio.run(_run(stack))
