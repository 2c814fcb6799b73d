"""A minimal HTTP/1.1 client over a `Channel`, split where curl splits its timings.

`send_and_wait` writes the request and returns when the first response byte arrives (time to first
byte); `read_response` reads the rest: status line, headers, and a Content-Length, chunked or
until-close body (content download). The whole body is read, so download time and throughput are
the real ones, up to `BodyLimits.download` bytes (`capped` when that stops it); only the first
`BodyLimits.keep` bytes are kept for the checks and the evidence (`truncated`). One request per connection
(`Connection: close`): a probe measures a fresh connection every time.

Why not h11: parsing with h11 (the sans-IO library under httpcore) behind the same socket and timers
was measured side by side with `bench/probe_load` (issue 14, ADR 0020, bench/RESULTS.md) and cost more
CPU per check (about 100 µs against 15 µs per exchange), so this parser stays; its framing is tested
against real servers in tests/probes/test_http_probe.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.common.masking import escape_control
from services.probes.probing.checks.net import Channel
from services.probes.probing.faults import ProtocolViolation

MAX_HEADER_BYTES = 64 * 1024
_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?$")
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class BodyLimits:
    """How much of a response body is kept for the checks and the evidence, and how much is read at most."""

    keep: int = 1024 * 1024
    download: int = 64 * 1024 * 1024


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    # Bytes of body received (after de-chunking), and the full size when the server declared it.
    received: int = 0
    declared_size: int | None = None
    # The kept body is shorter than the body (more than max_body bytes arrived).
    truncated: bool = False
    # The download stopped at max_download bytes before the body ended.
    capped: bool = False
    header_map: dict[str, str] = field(default_factory=dict)


def build_request(method: str, host_header: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    """The request bytes; caller headers win over our defaults (case-insensitively)."""
    given = {name.lower() for name, _ in headers}
    lines = (
        [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
        if "host" not in given
        else [f"{method} {target} HTTP/1.1"]
    )
    defaults = [("User-Agent", "b2x-probe/1"), ("Accept", "*/*"), ("Connection", "close")]
    lines += [f"{name}: {value}" for name, value in defaults if name.lower() not in given]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


class Http1Exchange:
    """One request/response on a fresh channel."""

    def __init__(self, channel: Channel, limits: BodyLimits) -> None:
        self._channel = channel
        self._max_body = limits.keep
        self._max_download = max(limits.download, limits.keep)
        self._buffer = bytearray()
        self._eof = False
        self.request_written = False

    async def send_and_wait(self, request: bytes) -> int:
        """Write `request`; return the size of the first chunk of the answer once it arrives."""
        await self._channel.send(request)
        self.request_written = True
        await self._more()
        if not self._buffer:
            raise ProtocolViolation("the server closed the connection without answering", "EMPTY_REPLY")
        return len(self._buffer)

    def partial_bytes(self) -> bytes:
        """What was received but not parsed yet: the evidence of an answer that is not HTTP."""
        return bytes(self._buffer)

    async def _more(self) -> bool:
        if self._eof:
            return False
        data = await self._channel.recv()
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    async def read_response(self, method: str) -> HttpResponse:
        """Status, headers and body; interim 1xx answers are skipped."""
        while True:
            response = await self._read_head()
            if not 100 <= response.status < 200 or response.status == 101:
                break
        if method.upper() == "HEAD" or response.status in _NO_BODY_STATUSES or 100 <= response.status < 200:
            return response
        encoding = response.header_map.get("transfer-encoding", "").lower()
        length = response.header_map.get("content-length")
        if "chunked" in encoding:
            await self._read_chunked(response)
        elif length is not None:
            try:
                size = int(length)
            except ValueError:
                raise ProtocolViolation(f"invalid Content-Length {length[:40]!r}", "BAD_CONTENT_LENGTH") from None
            response.declared_size = size
            await self._read_sized(response, size)
        else:
            await self._read_until_close(response)
        return response

    async def _read_head(self) -> HttpResponse:
        while b"\r\n\r\n" not in self._buffer:
            self._reject_non_http()
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise ProtocolViolation(f"response headers exceed {MAX_HEADER_BYTES} bytes", "HEADERS_TOO_LARGE")
            if not await self._more():
                raise ProtocolViolation("the connection closed in the middle of the response headers", "TRUNCATED")
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        lines = head.split(b"\r\n")
        match = _STATUS_LINE.match(lines[0])
        if not match:
            raise ProtocolViolation(f"not an HTTP status line: {_preview(lines[0])}", "NOT_HTTP")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            raw_name, sep, raw_value = line.partition(b":")
            if not sep or not raw_name.strip():
                raise ProtocolViolation(f"malformed response header line: {_preview(line)}", "BAD_HEADER")
            headers.append((raw_name.decode("latin-1").strip(), raw_value.decode("latin-1").strip()))
        header_map: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            header_map[key] = f"{header_map[key]}, {value}" if key in header_map else value
        reason = (match.group(4) or b"").decode("latin-1")
        return HttpResponse(int(match.group(3)), reason, headers, header_map=header_map)

    def _reject_non_http(self) -> None:
        """Fail as soon as the answer cannot become an HTTP status line (an SSH banner, binary)."""
        head = bytes(self._buffer[:5])
        if head and not (head == b"HTTP/" if len(head) == 5 else b"HTTP/".startswith(head)):
            raise ProtocolViolation(f"the server answered with something that is not HTTP: {_preview(self._buffer)}")

    def _take(self, response: HttpResponse, data: bytes) -> None:
        room = self._max_body - len(response.body)
        if room > 0:
            response.body += data[:room]
        if len(data) > max(room, 0):
            response.truncated = True
        response.received += len(data)

    def _room(self, response: HttpResponse) -> int:
        """Bytes still to read before the download cap."""
        return self._max_download - response.received

    async def _read_sized(self, response: HttpResponse, size: int) -> None:
        limit = min(size, self._max_download)
        while response.received < limit:
            if not self._buffer and not await self._more():
                raise ProtocolViolation(f"the body ended after {response.received} of {size} bytes", "TRUNCATED")
            chunk = bytes(self._buffer[: limit - response.received])
            del self._buffer[: len(chunk)]
            self._take(response, chunk)
        response.capped = limit < size
        response.truncated = response.truncated or response.capped

    async def _read_until_close(self, response: HttpResponse) -> None:
        while True:
            if self._buffer:
                chunk = bytes(self._buffer[: self._room(response)])
                self._buffer.clear()
                self._take(response, chunk)
                if self._room(response) <= 0:
                    response.capped = response.truncated = True
                    return
            if not await self._more():
                return

    async def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > 1024:
                raise ProtocolViolation("chunk size line is too long", "BAD_CHUNK")
            if not await self._more():
                raise ProtocolViolation("the connection closed inside a chunked body", "TRUNCATED")
        line, _, rest = bytes(self._buffer).partition(b"\r\n")
        self._buffer = bytearray(rest)
        return line

    async def _read_chunked(self, response: HttpResponse) -> None:
        while True:
            size_text = (await self._line()).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolViolation(f"invalid chunk size {_preview(size_text)}", "BAD_CHUNK") from None
            if size == 0:
                while await self._line():  # trailers, up to the empty line
                    pass
                return
            room = self._room(response)
            # The whole chunk and its CRLF, or just what fits under the download cap.
            wanted = size + 2 if room >= size else room
            while len(self._buffer) < wanted:
                if not await self._more():
                    raise ProtocolViolation("the connection closed inside a chunk", "TRUNCATED")
            if room < size:
                self._take(response, bytes(self._buffer[:room]))
                response.capped = response.truncated = True
                return
            self._take(response, bytes(self._buffer[:size]))
            del self._buffer[: size + 2]


def _preview(data: bytes | bytearray) -> str:
    return "'" + escape_control(bytes(data[:60]).decode("latin-1")) + "'"
