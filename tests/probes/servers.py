"""Real servers on 127.0.0.1 for probe tests: HTTP(S) with scripted answers, silent, garbage, full backlog."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme


@dataclass
class Route:
    """How the server answers one path."""

    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b'{"ok": true}'
    content_type: str = "application/json"
    delay: float = 0.0  # before the first byte
    chunked: bool = False
    raw: bytes | None = None  # sent instead of an HTTP answer
    hang: bool = False  # read the request, never answer


@dataclass
class SeenRequest:
    method: str
    target: str
    headers: dict[str, str]


class HttpTestServer:
    """An HTTP/1.1 server answering each path as its Route says; records the requests it got."""

    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.tls = tls
        self.requests: list[SeenRequest] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> HttpTestServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            self.requests.append(SeenRequest(method, target, headers))
            route = self.routes.get(target.split("?", 1)[0], Route(404, "Not Found", body=b"no such path"))
            if route.hang:
                await asyncio.Event().wait()
            if route.delay:
                await asyncio.sleep(route.delay)
            writer.write(route.raw if route.raw is not None else _answer(route))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def _answer(route: Route) -> bytes:
    head = [f"HTTP/1.1 {route.status} {route.reason}", f"Content-Type: {route.content_type}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in route.headers]
    if route.chunked:
        half = len(route.body) // 2
        parts = [route.body[:half], route.body[half:]]
        body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts if p) + b"0\r\n\r\n"
        head.append("Transfer-Encoding: chunked")
    else:
        body = route.body
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class SilentServer:
    """Accepts connections and never sends a byte."""

    async def __aenter__(self) -> SilentServer:
        self._conns: list[asyncio.StreamWriter] = []

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._conns.append(writer)
            with contextlib.suppress(Exception):
                await reader.read(-1)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.port: int = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for writer in self._conns:
            writer.close()


class FullBacklog:
    """A listening socket whose accept queue is full, so new connection requests go unanswered."""

    def __enter__(self) -> FullBacklog:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port: int = self.listener.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self.fillers.append(filler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in [*self.fillers, self.listener]:
            sock.close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Pki:
    """A test CA and server contexts for good, expired, wrong-host and self-signed certificates."""

    ca: trustme.CA
    ca_file: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        ca = trustme.CA()
        path = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(path))
        return cls(ca, path)

    def _context(self, cert: trustme.LeafCert) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context

    def valid(self) -> ssl.SSLContext:
        return self._context(self.ca.issue_cert("localhost", "127.0.0.1"))

    def expired(self, on: datetime = datetime(2026, 1, 2, tzinfo=UTC)) -> ssl.SSLContext:
        return self._context(
            self.ca.issue_cert("localhost", "127.0.0.1", not_before=on - timedelta(days=90), not_after=on)
        )

    def expiring(self, not_after: datetime) -> ssl.SSLContext:
        """A valid certificate that expires at `not_after`."""
        return self._context(
            self.ca.issue_cert("localhost", "127.0.0.1", not_before=not_after - timedelta(days=90), not_after=not_after)
        )

    def wrong_host(self) -> ssl.SSLContext:
        return self._context(self.ca.issue_cert("erp.example.org"))

    def untrusted(self) -> ssl.SSLContext:
        return self._context(trustme.CA().issue_cert("localhost", "127.0.0.1"))

    def expired_untrusted(self, on: datetime = datetime(2026, 1, 2, tzinfo=UTC)) -> ssl.SSLContext:
        """Expired, and from a CA nobody trusts: OpenSSL reports only the unknown issuer."""
        leaf = trustme.CA().issue_cert("localhost", "127.0.0.1", not_before=on - timedelta(days=90), not_after=on)
        return self._context(leaf)

    def wrong_host_untrusted(self) -> ssl.SSLContext:
        return self._context(trustme.CA().issue_cert("erp.example.org"))

    def self_signed(self) -> ssl.SSLContext:
        """The server presents a certificate signed by its own key (a CA cert used as a leaf)."""
        other = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        other.configure_trust(context)
        with trustme.Blob(other.cert_pem.bytes()).tempfile() as cert, other.private_key_pem.tempfile() as key:
            context.load_cert_chain(cert, key)
        return context
