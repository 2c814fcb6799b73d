"""TCP probe: resolve and connect (and, for `tls://`, complete a TLS handshake), nothing more."""

from __future__ import annotations

from services.probes.domain import PhaseName, ProbeKind, Target
from services.probes.probing.checks.base import Attempt, CheckOutcome
from services.probes.probing.checks.net import Channel, TlsSettings, connect, resolve, split_endpoint, tls_context
from services.probes.probing.faults import ProtocolViolation
from services.probes.probing.placeholders import Expanded

_TLS_SCHEMES = frozenset({"tls", "tcps", "ssl"})


class TcpCheck:
    kind = ProbeKind.TCP

    async def run(self, target: Target, expanded: Expanded, attempt: Attempt) -> CheckOutcome:
        try:
            scheme, host, port = split_endpoint(expanded.endpoint)
        except ValueError as error:
            raise ProtocolViolation(str(error), "BAD_ENDPOINT") from None
        attempt.where = f"{host}:{port}"
        attempt.evidence.method, attempt.evidence.url = "CONNECT", expanded.endpoint
        addresses = await attempt.step(PhaseName.DNS, resolve(host, port), lambda infos: f"{host} → {infos[0][4][0]}")
        sock = await attempt.step(PhaseName.TCP_CONNECT, connect(addresses), f"connected to {host}:{port}")
        channel = Channel(sock)
        try:
            if scheme in _TLS_SCHEMES:
                tls = TlsSettings(verify=not target.options.tls_skip_verify, ca_file=target.options.ca_file, alpn=())
                await attempt.step(PhaseName.TLS_HANDSHAKE, channel.start_tls(tls_context(tls), host))
            else:
                attempt.skip(PhaseName.TLS_HANDSHAKE, "plain TCP")
        finally:
            channel.close()
        return CheckOutcome(summary=f"TCP port {port} on {host} accepts connections")
