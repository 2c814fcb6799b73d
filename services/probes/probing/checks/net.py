"""Sockets for probes: resolve, connect and TLS as separate steps, so each can be timed on its own.

A `Channel` is a connected non-blocking socket, with TLS driven through `ssl.SSLObject` and memory
BIOs when the target wants it. Nothing here is pooled or reused: every test measures a fresh
connection, as `curl -w` does, and the work between the timed points is a few function calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.probes.probing.certinfo import CertInfo, parse_certificate
from services.probes.probing.faults import CertificateRejected, ProbeMisconfigured

AddrInfo = tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]]
_READ_SIZE = 65536


async def resolve(host: str, port: int) -> list[AddrInfo]:
    """getaddrinfo on the loop's resolver; raises socket.gaierror as the resolver said.

    An IP literal needs no lookup (curl does none either); skipping the resolver thread keeps the
    DNS phase of such targets at what it really costs, nothing.
    """
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        # RFC 6761: loopback by definition; curl resolves it the same way, without the resolver.
        return [_literal("127.0.0.1", port), _literal("::1", port)]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [_literal(host, port)]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(infos)  # type: ignore[arg-type]


def _literal(host: str, port: int) -> AddrInfo:
    if ipaddress.ip_address(host).version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


async def connect(addresses: Sequence[AddrInfo]) -> socket.socket:
    """A connected non-blocking socket to the first address that accepts; the last error otherwise.

    Addresses are tried in resolver order (as curl does when `localhost` gives ::1 first and the
    server listens on 127.0.0.1 only).
    """
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as error:
            sock.close()
            last = error
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise last or OSError("no address to connect to")


class Channel:
    """A connected socket, plain or TLS, with just send and receive."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._loop = asyncio.get_running_loop()
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.tls_version = ""
        self.cipher = ""

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Run the TLS handshake on the connected socket; CertificateRejected if verification fails."""
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLCertVerificationError as error:
                raise CertificateRejected(error, server_hostname, None) from None
        await self._flush()
        self.tls_version = self._tls.version() or ""
        cipher = self._tls.cipher()
        self.cipher = cipher[0] if cipher else ""

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            await self._loop.sock_sendall(self.sock, data)

    async def _fill(self) -> None:
        data = await self._loop.sock_recv(self.sock, _READ_SIZE)
        if not data:
            self._incoming.write_eof()
        else:
            self._incoming.write(data)

    async def send(self, data: bytes) -> None:
        if self._tls is None:
            await self._loop.sock_sendall(self.sock, data)
            return
        self._tls.write(data)
        await self._flush()

    async def recv(self) -> bytes:
        """The next bytes the peer sent; b"" at end of stream."""
        if self._tls is None:
            return await self._loop.sock_recv(self.sock, _READ_SIZE)
        while True:
            try:
                return self._tls.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                # A peer that closes without close_notify still ended the body for Connection: close.
                return b""

    def peer_certificate_der(self) -> bytes | None:
        return self._tls.getpeercert(binary_form=True) if self._tls is not None else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass(frozen=True)
class TlsSettings:
    verify: bool = True
    ca_file: str = ""
    alpn: tuple[str, ...] = ("http/1.1",)


_CONTEXTS: dict[tuple[TlsSettings, float], ssl.SSLContext] = {}


def tls_context(settings: TlsSettings) -> ssl.SSLContext:
    """A client context: system trust (or `ca_file`), or no verification when asked.

    Contexts are cached: loading the system trust store costs tens of milliseconds, which an agent
    checking a thousand targets must not pay per test. A changed `ca_file` (renewed CA) is reloaded.
    ProbeMisconfigured when `ca_file` is missing, unreadable or holds no PEM certificate.
    """
    try:
        stamp = os.stat(settings.ca_file).st_mtime if settings.ca_file else 0.0
    except OSError as error:
        raise _unusable_ca_file(settings.ca_file, error) from None
    key = (settings, stamp)
    cached = _CONTEXTS.get(key)
    if cached is None:
        if len(_CONTEXTS) > 64:
            _CONTEXTS.clear()
        cached = _CONTEXTS[key] = _new_context(settings)
    return cached


def _unusable_ca_file(path: str, error: OSError) -> ProbeMisconfigured:
    if isinstance(error, ssl.SSLError):  # read, but OpenSSL found no certificate in it
        reason = f"it holds no PEM certificate ({getattr(error, 'reason', None) or error})"
    else:
        reason = error.strerror or str(error)
    return ProbeMisconfigured(f"ca_file {path} cannot be used: {reason}", "CA_FILE_UNUSABLE")


def _new_context(settings: TlsSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=settings.ca_file or None)
    except OSError as error:  # ssl.SSLError included
        raise _unusable_ca_file(settings.ca_file, error) from None
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.alpn:
        context.set_alpn_protocols(list(settings.alpn))
    return context


async def peer_certificate(addresses: Sequence[AddrInfo], server_hostname: str) -> CertInfo | None:
    """The certificate a server presents, fetched without verification, for the evidence of a rejection."""
    try:
        sock = await connect(addresses)
    except OSError:
        return None
    channel = Channel(sock)
    try:
        await channel.start_tls(tls_context(TlsSettings(verify=False, alpn=())), server_hostname)
        der = channel.peer_certificate_der()
    except (OSError, ssl.SSLError, CertificateRejected):
        return None
    finally:
        channel.close()
    return parse_certificate(der) if der else None


def split_endpoint(endpoint: str, default_port: int | None = None) -> tuple[str, str, int]:
    """(scheme, host, port) of `scheme://host:port/...` or a bare `host:port`; ValueError when unusable."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    port = parts.port or default_port
    if not parts.hostname or port is None:
        raise ValueError(f"endpoint {endpoint!r} needs a host and a port")
    return parts.scheme.lower(), parts.hostname, port
