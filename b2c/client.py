"""GraphQL over HTTP to the gateway; every failure becomes a CliError with the right exit code.

Built on the standard library's http.client rather than httpx: a status query must answer within
300 ms wall time, and importing httpx alone costs a third of that on a small machine.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from b2c.config import CliConfig
from b2c.errors import CliError, Exit

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


class GraphQLClient:
    """One keep-alive connection to the gateway's /graphql."""

    def __init__(self, config: CliConfig, timeout: float = READ_TIMEOUT) -> None:
        self.config = config
        parts = urlsplit(config.api_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"api-url {config.api_url!r} is not an http(s) URL; fix it with `b2c config set api-url`")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._path = (parts.path or "") + "/graphql"
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=CONNECT_TIMEOUT, context=self.config.ssl_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT)
        return self._conn

    def _post(self, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "b2c"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            if conn.sock is not None:
                conn.sock.settimeout(self._timeout)
            response = conn.getresponse()
            return response.status, response.read()
        except (ConnectionRefusedError, socket.gaierror) as error:
            self.close()
            reason = (
                "connection refused (is the stack running? try `b2c up`)"
                if isinstance(error, ConnectionRefusedError)
                else f"host not found ({error.strerror})"
            )
            raise CliError(f"cannot reach the API at {self.config.api_url}: {reason}", Exit.UNREACHABLE) from None
        except TimeoutError:
            self.close()
            raise CliError(f"cannot reach the API at {self.config.api_url}: timed out", Exit.UNREACHABLE) from None
        except (OSError, http.client.HTTPException) as error:
            self.close()
            if type(error).__name__ == "SSLCertVerificationError":  # ssl stays unimported for http URLs
                reason = getattr(error, "verify_message", "") or str(error)
                raise CliError(
                    f"cannot reach the API at {self.config.api_url}: its TLS certificate is not trusted ({reason}); "
                    "pass the CA with --ca-file or `b2c config set ca-file <pem>`",
                    Exit.UNREACHABLE,
                ) from None
            raise CliError(
                f"cannot reach the API at {self.config.api_url}: {type(error).__name__}: {error}", Exit.UNREACHABLE
            ) from None

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a successful operation; raises CliError with the gateway's message otherwise."""
        if not self.config.api_key:
            raise CliError("no API key configured: run `b2c auth token <key>` (b2c up prints one)")
        status, raw = self._post(json.dumps({"query": query, "variables": variables or {}}).encode())
        try:
            body = json.loads(raw)
        except ValueError:
            if status in (502, 503, 504):
                raise CliError(
                    f"the service is unavailable: the API at {self.config.api_url} answered HTTP {status}; "
                    "try again shortly",
                    Exit.UNREACHABLE,
                ) from None
            raise CliError(
                f"the API at {self.config.api_url} answered HTTP {status} without GraphQL "
                "(is api-url pointing at the gateway?)",
                Exit.UNREACHABLE,
            ) from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("code", "ERROR")
            message = first.get("message", "unknown error")
            if code == "SERVICE_UNAVAILABLE":
                raise CliError(f"{message} [{code}]", Exit.UNREACHABLE)
            if code == "UNAUTHENTICATED":
                message += " — set a key with `b2c auth token <key>`"
            raise CliError(f"{message} [{code}]", Exit.ERROR)
        if status >= 400 or not isinstance(body, dict) or "data" not in body:
            raise CliError(f"the API answered HTTP {status}", Exit.ERROR)
        data: dict[str, Any] = body["data"] or {}
        return data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def run_query(config: CliConfig, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """One operation on a fresh connection, closed afterwards."""
    client = GraphQLClient(config)
    try:
        return client.execute(query, variables)
    finally:
        client.close()
