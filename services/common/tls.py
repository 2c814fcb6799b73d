"""TLS for the gateway's HTTPS and for gRPC between the services, from PEM files named in settings.

- Gateway: `B2X_TLS_CERT_FILE` + `B2X_TLS_KEY_FILE` → HTTPS with TLS 1.2 at least (1.3 preferred: OpenSSL
  negotiates the highest both sides speak).
- gRPC servers: `B2X_GRPC_TLS_CERT_FILE` + `B2X_GRPC_TLS_KEY_FILE` → `add_secure_port`; with
  `B2X_GRPC_TLS_CLIENT_AUTH=true` they also require a client certificate signed by `B2X_GRPC_TLS_CA_FILE`.
- gRPC clients (gateway, probes → health): `B2X_GRPC_TLS_CA_FILE` → TLS, verifying the server against
  that CA (and presenting the process's own certificate when it has one, for mutual TLS).

Files are read once at start-up; a missing, unreadable or mismatched file stops the process with one
line naming the variable.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.common.errors import StartupError

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def read_pem(path: str, variable: str) -> bytes:
    """The file's bytes, or StartupError naming the variable that pointed at it."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as error:
        raise StartupError(f"{variable}: cannot read {path}: {error.strerror or error}") from None
    if b"-----BEGIN " not in data:
        raise StartupError(f"{variable}: {path} is not a PEM file")
    return data


def server_context(cert_file: str, key_file: str, *, cert_var: str, key_var: str) -> ssl.SSLContext:
    """A server-side context with TLS 1.2 as the floor; checks that the key belongs to the certificate."""
    read_pem(cert_file, cert_var)
    read_pem(key_file, key_var)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MINIMUM_VERSION
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as error:
        raise StartupError(
            f"{key_var}: the key does not match {cert_var} or cannot be loaded ({error.reason})"
        ) from None
    return context


@dataclass(frozen=True)
class GrpcTLS:
    """gRPC TLS material of one process; empty fields mean plaintext."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    client_auth: bool = False
    server_name: str = ""

    @property
    def serves_tls(self) -> bool:
        return bool(self.cert_file and self.key_file)

    @property
    def dials_tls(self) -> bool:
        return bool(self.ca_file)

    def check(self) -> None:
        """Fail start-up early on incomplete or unreadable settings."""
        if bool(self.cert_file) != bool(self.key_file):
            raise StartupError("B2X_GRPC_TLS_CERT_FILE and B2X_GRPC_TLS_KEY_FILE must be set together")
        if self.client_auth and not (self.ca_file and self.serves_tls):
            raise StartupError(
                "B2X_GRPC_TLS_CLIENT_AUTH needs B2X_GRPC_TLS_CA_FILE and the server's certificate and key"
            )
        if self.serves_tls:
            server_context(
                self.cert_file, self.key_file, cert_var="B2X_GRPC_TLS_CERT_FILE", key_var="B2X_GRPC_TLS_KEY_FILE"
            )
        if self.ca_file:
            read_pem(self.ca_file, "B2X_GRPC_TLS_CA_FILE")

    def server_credentials(self) -> grpc.ServerCredentials:
        key = read_pem(self.key_file, "B2X_GRPC_TLS_KEY_FILE")
        cert = read_pem(self.cert_file, "B2X_GRPC_TLS_CERT_FILE")
        roots = read_pem(self.ca_file, "B2X_GRPC_TLS_CA_FILE") if self.client_auth else None
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=roots, require_client_auth=self.client_auth)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        roots = read_pem(self.ca_file, "B2X_GRPC_TLS_CA_FILE")
        if self.serves_tls:
            return grpc.ssl_channel_credentials(
                roots,
                private_key=read_pem(self.key_file, "B2X_GRPC_TLS_KEY_FILE"),
                certificate_chain=read_pem(self.cert_file, "B2X_GRPC_TLS_CERT_FILE"),
            )
        return grpc.ssl_channel_credentials(roots)

    def channel_options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name and self.dials_tls else []
