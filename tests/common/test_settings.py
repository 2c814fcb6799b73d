"""Settings come from B2X_* variables; a bad one stops start-up with one line that names it."""

from __future__ import annotations

import pytest

from services.common.errors import StartupError
from services.common.settings import load_settings
from services.jobs.settings import JobsSettings


def test_values_are_read_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables land in typed fields; unset ones keep their defaults."""
    monkeypatch.setenv("B2X_DATABASE_URL", "postgresql://u@db:5432/b2x")
    monkeypatch.setenv("B2X_REDIS_URL", "redis://:pw@cache:6379/0")
    monkeypatch.setenv("B2X_JOBS_PORT", "6000")
    settings = load_settings(JobsSettings)
    assert settings.jobs_port == 6000 and settings.jobs_metrics_port == 9101 and settings.namespace == "b2x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"B2X_REDIS_URL": "redis://:pw@c:6379/0"}, "B2X_DATABASE_URL is required but not set"),
        (
            {"B2X_DATABASE_URL": "mysql://x", "B2X_REDIS_URL": "redis://:pw@c"},
            "B2X_DATABASE_URL: must be a PostgreSQL URL",
        ),
        (
            {"B2X_DATABASE_URL": "postgresql://d/x", "B2X_REDIS_URL": "redis://:pw@c", "B2X_JOBS_PORT": "http"},
            "B2X_JOBS_PORT:",
        ),
        (
            {"B2X_DATABASE_URL": "postgresql://d/x", "B2X_REDIS_URL": "redis://:pw@c", "B2X_JOBS_MAX_ATTEMPTS": "X=0"},
            "B2X_JOBS_MAX_ATTEMPTS:",
        ),
        (
            {"B2X_DATABASE_URL": "postgresql://d/x", "B2X_REDIS_URL": "redis://:pw@c", "B2X_LOG_LEVEL": "LOUD"},
            "B2X_LOG_LEVEL:",
        ),
    ],
)
def test_a_missing_or_malformed_variable_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    """The StartupError message is a single line that starts with the variable's name."""
    for key in ("B2X_DATABASE_URL", "B2X_REDIS_URL", "B2X_JOBS_PORT", "B2X_JOBS_MAX_ATTEMPTS", "B2X_LOG_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(StartupError) as error:
        load_settings(JobsSettings)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("redis://cache:6379/0", False),
        ("redis://10.0.0.7:6379/0", False),
        ("rediss://default:s3cret@cache:6380/0", True),
        ("redis://:s3cret@cache:6379/0", True),
        ("redis://127.0.0.1:56379/0", True),
        ("redis://localhost:6379/0", True),
        ("unix:///run/redis.sock", True),
    ],
)
def test_a_redis_on_another_host_needs_a_password(monkeypatch: pytest.MonkeyPatch, url: str, accepted: bool) -> None:
    """Only a Redis on this machine (loopback or a unix socket) may go without a password."""
    monkeypatch.setenv("B2X_DATABASE_URL", "postgresql://u@db:5432/b2x")
    monkeypatch.setenv("B2X_REDIS_URL", url)
    if accepted:
        assert load_settings(JobsSettings).redis_url == url
    else:
        with pytest.raises(StartupError, match=r"B2X_REDIS_URL: .*needs a password"):
            load_settings(JobsSettings)
