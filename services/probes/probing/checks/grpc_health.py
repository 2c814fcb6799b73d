"""gRPC probe: `grpc.health.v1.Health/Check` with a deadline, after a timed TCP connect.

The TCP connect is done on a socket of our own first, because a gRPC channel hides *why* it could
not connect (refused, unreachable and timed out all read as UNAVAILABLE); the Check then runs on
the channel's own fresh connection.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.probes.domain import ErrorType, PhaseName, ProbeKind, Target
from services.probes.probing.checks.base import Attempt, CheckOutcome
from services.probes.probing.checks.net import connect, resolve, split_endpoint
from services.probes.probing.classify import make
from services.probes.probing.faults import CheckFailed, ProbeMisconfigured, ProtocolViolation
from services.probes.probing.placeholders import Expanded

_TLS_SCHEMES = frozenset({"grpcs", "https"})
_Status = health_pb2.HealthCheckResponse


async def _tcp_precheck(attempt: Attempt, host: str, port: int) -> str:
    addresses = await attempt.step(PhaseName.DNS, resolve(host, port), lambda infos: f"{host} → {infos[0][4][0]}")
    sock = await attempt.step(PhaseName.TCP_CONNECT, connect(addresses), f"connected to {host}:{port}")
    sock.close()
    address = str(addresses[0][4][0])
    return f"[{address}]" if ":" in address else address


async def _expect_serving(status: int, service: str) -> None:
    name = f"service {service!r}" if service else "the server"
    if status == _Status.SERVING:
        return
    if status == _Status.SERVICE_UNKNOWN:
        raise CheckFailed(make(ErrorType.UNKNOWN, "SERVICE_UNKNOWN", f"the health server does not know {name}"))
    label = _Status.ServingStatus.Name(status)
    raise CheckFailed(make(ErrorType.SERVICE_UNAVAILABLE, label, f"{name} reports {label}", transient=True))


class GrpcHealthCheck:
    kind = ProbeKind.GRPC_HEALTH

    async def run(self, target: Target, expanded: Expanded, attempt: Attempt) -> CheckOutcome:
        try:
            scheme, host, port = split_endpoint(expanded.endpoint)
        except ValueError as error:
            raise ProtocolViolation(str(error), "BAD_ENDPOINT") from None
        service = target.options.grpc_service
        attempt.where = f"{host}:{port}"
        evidence = attempt.evidence
        evidence.method, evidence.url = "grpc.health.v1.Health/Check", expanded.endpoint
        address = await _tcp_precheck(attempt, host, port)
        if scheme in _TLS_SCHEMES:
            roots = None
            if target.options.ca_file:
                roots = _read_roots(target.options.ca_file)
            channel = grpc.aio.secure_channel(f"{host}:{port}", grpc.ssl_channel_credentials(roots))
            attempt.skip(PhaseName.TLS_HANDSHAKE, "negotiated by the gRPC channel (part of time to first byte)")
        else:
            channel = grpc.aio.insecure_channel(f"{address}:{port}")
            attempt.skip(PhaseName.TLS_HANDSHAKE, "plaintext gRPC")
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=service)
            response = await attempt.step(
                PhaseName.TIME_TO_FIRST_BYTE,
                stub.Check(request, timeout=attempt.timeout),
                "HTTP/2 connection and Health/Check",
            )
        finally:
            await channel.close(None)
        label = _Status.ServingStatus.Name(response.status)
        await attempt.step(PhaseName.PROTOCOL_CHECK, _expect_serving(response.status, service), label)
        return CheckOutcome(summary=f"gRPC health of {service or 'the server'} is {label}")


def _read_roots(path: str) -> bytes:
    """The PEM bundle at `path`; ProbeMisconfigured when it cannot be read or holds no certificate."""
    try:
        with open(path, "rb") as handle:
            roots = handle.read()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ProbeMisconfigured(f"ca_file {path} cannot be used: {reason}", "CA_FILE_UNUSABLE") from None
    if b"-----BEGIN CERTIFICATE-----" not in roots:
        raise ProbeMisconfigured(f"ca_file {path} cannot be used: it holds no PEM certificate", "CA_FILE_UNUSABLE")
    return roots
