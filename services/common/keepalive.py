"""gRPC keepalive: one policy for the clients' pings and the servers' tolerance of them.

Clients (the gateway, the probes → health channel, the job SDK) ping an idle connection every
`grpc_keepalive_seconds` so a peer that vanished (a SIGKILLed service, a dropped NAT entry) is noticed
within seconds instead of at the next call. A server that keeps gRPC's default policy (at most one
ping every 5 minutes without calls) answers such pings with GOAWAY `too_many_pings` and drops the
connection, failing the calls in flight; so the servers allow pings twice as often as clients send them.
"""

from __future__ import annotations

KEEPALIVE_SECONDS = 30.0
KEEPALIVE_TIMEOUT_SECONDS = 10.0


def client_options(every: float = KEEPALIVE_SECONDS) -> list[tuple[str, int]]:
    """Channel options: ping every `every` seconds, with or without calls, and give up on an unanswered ping."""
    interval = int(every * 1000)
    return [
        ("grpc.keepalive_time_ms", interval),
        ("grpc.keepalive_timeout_ms", int(min(KEEPALIVE_TIMEOUT_SECONDS, every) * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),  # keep pinging an idle channel
    ]


def server_options(client_every: float = KEEPALIVE_SECONDS) -> list[tuple[str, int]]:
    """Server options that accept the pings of clients configured with `client_every`, and of job SDKs left at
    the default, with room for timer jitter (half the interval)."""
    return [
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", int(min(client_every, KEEPALIVE_SECONDS) * 500)),
        ("grpc.http2.max_ping_strikes", 2),
    ]
