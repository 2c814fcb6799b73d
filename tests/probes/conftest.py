"""Fixtures for probe tests: a test PKI, an engine with fast retries, and a helper to build targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.probes.domain import ProbeKind, ProbeOptions, Target
from services.probes.probing.engine import EngineConfig, ProbeEngine
from tests.probes.servers import Pki

# Values that must never appear in anything a test records, returns, logs or publishes.
SECRET_TOKEN = "tok-9f8e7d6c5b4a"
SECRET_PASSWORD = "pw-1a2b3c4d5e"
SECRET_QUERY = "q-00aa11bb22cc"
ENVIRON = {"ERP_TOKEN": SECRET_TOKEN, "ERP_PASSWORD": SECRET_PASSWORD}
SECRETS = (SECRET_TOKEN, SECRET_PASSWORD, SECRET_QUERY)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


@pytest.fixture
def engine() -> ProbeEngine:
    """Fast backoff so retried tests finish quickly; a short per-phase timeout."""
    return ProbeEngine(EngineConfig(timeout_seconds=2.0, backoff_seconds=0.02), ENVIRON)


def target(endpoint: str, kind: ProbeKind = ProbeKind.HTTP, **options: object) -> Target:
    return Target("11111111-2222-4333-8444-555555555555", "erp", "enventa ERP", kind, endpoint, ProbeOptions(**options))  # type: ignore[arg-type]


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked"
