"""Container health checks: `python -m services.common.healthcheck grpc HOST:PORT` or `http URL`.

Exit status 0 when the target answers healthy (gRPC health SERVING, HTTP 200), 1 otherwise — the
contract of Docker's HEALTHCHECK and Kubernetes exec probes.
"""

from __future__ import annotations

import sys
import urllib.request


def check_grpc(address: str, timeout: float) -> bool:
    import grpc  # noqa: PLC0415 - keep the http path light
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def check_http(url: str, timeout: float) -> bool:
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            return bool(response.status == 200)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("grpc", "http"):
        print("usage: python -m services.common.healthcheck grpc HOST:PORT | http URL", file=sys.stderr)
        return 2
    kind, target = argv
    ok = check_grpc(target, 3.0) if kind == "grpc" else check_http(target, 3.0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
