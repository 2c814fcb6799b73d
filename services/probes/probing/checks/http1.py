"""HTTP/1.1 for probes: h11 parses, our own socket and timers decide when each phase starts and ends.

h11 (the sans-IO HTTP/1.1 library under httpcore) writes the request and reads the answer: status
line, headers, and Content-Length, chunked or until-close bodies, with its framing rules. We feed it
the bytes of a `Channel`, so the phases stay where curl puts them: `send_and_wait` writes the request
and returns when the first response byte arrives (time to first byte); `read_response` reads the rest
(content download). The whole body is read, so download time and throughput are the real ones, up to
`BodyLimits.download` bytes (`capped` when that stops it); only the first `BodyLimits.keep` bytes are
kept for the checks and the evidence (`truncated`). One request per connection (`Connection: close`):
a probe measures a fresh connection every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h11

from services.common.masking import escape_control
from services.probes.probing.checks.net import Channel
from services.probes.probing.faults import ProtocolViolation

MAX_HEADER_BYTES = 64 * 1024
# The start of an answer kept raw, as evidence when it cannot be parsed (an SSH banner, binary).
_RAW_EVIDENCE = 4096
_DEFAULT_HEADERS = (("User-Agent", "b2x-probe/1"), ("Accept", "*/*"), ("Connection", "close"))


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
    # The kept body is shorter than the body (more than `keep` bytes arrived).
    truncated: bool = False
    # The download stopped at `download` bytes before the body ended.
    capped: bool = False
    header_map: dict[str, str] = field(default_factory=dict)


class Http1Exchange:
    """One request/response on a fresh channel."""

    def __init__(self, channel: Channel, limits: BodyLimits) -> None:
        self._channel = channel
        self._keep = limits.keep
        self._download = max(limits.download, limits.keep)
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._raw = bytearray()
        self._eof = False
        self._body = bytearray()
        self._reading = False  # the download phase has begun: a bad answer fails there, with its bytes
        self.request_written = False

    def prepare(self, method: str, host_header: str, target: str, headers: list[tuple[str, str]]) -> bytes:
        """The request bytes; caller headers win over our defaults (case-insensitively)."""
        given = {name.lower() for name, _ in headers}
        lines = [] if "host" in given else [("Host", host_header)]
        lines += [(name, value) for name, value in _DEFAULT_HEADERS if name.lower() not in given]
        lines += headers
        encoded = [(name.encode("latin-1", "replace"), value.encode("latin-1", "replace")) for name, value in lines]
        try:
            head = self._conn.send(h11.Request(method=method, target=target.encode("latin-1", "replace"),
                                               headers=encoded))  # fmt: skip
            end = self._conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as error:
            raise ProtocolViolation(f"cannot send this request: {error}", "BAD_REQUEST") from None
        return (head or b"") + (end or b"")

    async def send_and_wait(self, request: bytes) -> int:
        """Write `request`; return the size of the first chunk of the answer once it arrives."""
        await self._channel.send(request)
        self.request_written = True
        await self._more()
        if not self._raw:
            raise ProtocolViolation("the server closed the connection without answering", "EMPTY_REPLY")
        return len(self._raw)

    def partial_bytes(self) -> bytes:
        """The start of what was received: the evidence of an answer that is not (valid) HTTP."""
        return bytes(self._body) if self._body else bytes(self._raw)

    async def _more(self) -> bool:
        if self._eof:
            return False
        data = await self._channel.recv()
        if not data:
            self._eof = True
        elif len(self._raw) < _RAW_EVIDENCE:
            self._raw += data[: _RAW_EVIDENCE - len(self._raw)]
            if self._reading:
                self._reject_non_http()
        self._conn.receive_data(data)
        return bool(data)

    def _reject_non_http(self) -> None:
        """Fail as soon as the answer cannot become an HTTP status line (an SSH banner waits for us forever)."""
        head = bytes(self._raw[:5])
        if head and not (head == b"HTTP/" if len(head) == 5 else b"HTTP/".startswith(head)):
            raise ProtocolViolation(f"the server answered with something that is not HTTP: {_preview(self._raw)}")

    async def _event(self) -> object:
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as error:
                raise _violation(error, self._eof) from None
            if event is not h11.NEED_DATA:
                return event
            if self._eof:  # h11 has seen the end of the stream and still wants more
                raise ProtocolViolation("the connection closed before the response was complete", "TRUNCATED")
            await self._more()

    async def read_response(self) -> HttpResponse:
        """Status, headers and body; interim 1xx answers are skipped."""
        self._reading = True
        self._reject_non_http()
        while True:
            event = await self._event()
            if isinstance(event, h11.Response):
                break
            if not isinstance(event, h11.InformationalResponse):
                raise ProtocolViolation(f"unexpected {type(event).__name__} before the response", "NOT_HTTP")
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers.raw_items()]
        header_map: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            header_map[key] = f"{header_map[key]}, {value}" if key in header_map else value
        response = HttpResponse(event.status_code, event.reason.decode("latin-1"), headers, header_map=header_map)
        length = header_map.get("content-length")
        if length is not None and length.strip().isdigit() and "chunked" not in header_map.get("transfer-encoding", ""):
            response.declared_size = int(length)
        while True:
            event = await self._event()
            if isinstance(event, h11.Data):
                if self._take(response, bytes(event.data)):
                    break
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        response.body = bytes(self._body)
        return response

    def _take(self, response: HttpResponse, data: bytes) -> bool:
        """Count `data`, keep what fits; True when the download cap is reached before the body's end."""
        room = self._download - response.received
        if len(data) > room:
            data = data[:room]
            response.capped = response.truncated = True
        keep = self._keep - len(self._body)
        if keep > 0:
            self._body += data[:keep]
        if len(data) > max(keep, 0):
            response.truncated = True
        response.received += len(data)
        return response.capped


def _violation(error: h11.RemoteProtocolError, eof: bool) -> ProtocolViolation:
    text = str(error)
    if eof:
        return ProtocolViolation(f"the connection closed before the response was complete ({text})", "TRUNCATED")
    if "status line" in text or "illegal" in text.lower():
        return ProtocolViolation(f"not a valid HTTP response: {text}", "NOT_HTTP")
    if "exceeds" in text or "too long" in text or "maximum" in text:
        return ProtocolViolation(f"response headers exceed {MAX_HEADER_BYTES} bytes", "HEADERS_TOO_LARGE")
    return ProtocolViolation(f"invalid HTTP response: {text}", "BAD_RESPONSE")


def _preview(data: bytes | bytearray) -> str:
    return "'" + escape_control(bytes(data[:60]).decode("latin-1")) + "'"
