"""docker-compose.yml and the Dockerfile stay consistent with the code (no Docker engine here to run them)."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS_OF = {
    "jobs": "services.jobs.settings:JobsSettings",
    "health": "services.health.settings:HealthSettings",
    "probes": "services.probes.settings:ProbesSettings",
    "gateway": "gateway.settings:GatewaySettings",
}


def _settings_class(service: str) -> Any:
    module, _, name = SETTINGS_OF[service].partition(":")
    return getattr(importlib.import_module(module), name)


def test_every_container_has_a_health_check_and_waits_for_healthy_dependencies() -> None:
    """Each long-running service defines a healthcheck; every depends_on names a defined service and waits for
    it to be healthy, or, for a one-shot container (db-roles, which gives each service its database role),
    to have completed successfully."""
    services = COMPOSE["services"]
    one_shot = {name for name, spec in services.items() if spec.get("restart") == "no"}
    assert one_shot == {"db-roles"}
    for name, spec in services.items():
        assert name in one_shot or "healthcheck" in spec, f"{name} has no healthcheck"
        for dependency, condition in (spec.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert condition == {"condition": wanted}, f"{name} → {dependency}: {condition}"
    assert set(services["gateway"]["depends_on"]) == {"db-roles", "redis", "jobs", "health", "probes"}
    for service in SETTINGS_OF:
        assert f"b2x_{service}:" in services[service]["environment"]["B2X_DATABASE_URL"], service


@pytest.mark.parametrize("service", sorted(SETTINGS_OF))
def test_each_process_starts_with_the_environment_compose_gives_it(service: str) -> None:
    """Every B2X_* variable compose sets is a real setting, and the settings class accepts the values."""
    env = {k: str(v) for k, v in COMPOSE["services"][service]["environment"].items() if not k.startswith("OTEL_")}
    cls = _settings_class(service)
    fields = set(cls.model_fields)
    for variable in env:
        assert variable.startswith("B2X_"), variable
        assert variable.removeprefix("B2X_").lower() in fields, f"{service}: {variable} is not a setting"
    settings = cls(**{k.removeprefix("B2X_").lower(): v for k, v in env.items()})
    assert settings.database_url.startswith("postgresql://")


def test_commands_and_health_checks_name_modules_that_exist() -> None:
    """`python -m X` in commands and health checks refers to importable modules."""
    for name, spec in COMPOSE["services"].items():
        for argv in (spec.get("command"), (spec.get("healthcheck") or {}).get("test")):
            if isinstance(argv, list) and "-m" in argv:
                module = argv[argv.index("-m") + 1]
                assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"


def test_mounted_files_and_dockerfile_sources_exist() -> None:
    """Bind mounts point at files in the repository; every COPY source of the Dockerfile exists."""
    for spec in COMPOSE["services"].values():
        for volume in spec.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        # COPY --from=<stage> copies from an earlier build stage, not from the repository.
        if (match := re.match(r"^COPY\s+(.+)\s+\S+$", line.strip())) and "--from=" not in match.group(1):
            for source in match.group(1).split():
                assert (ROOT / source).exists(), source


def test_the_observability_profile_scrapes_every_b2x_container_where_compose_serves_metrics() -> None:
    """Prometheus, Alertmanager, Grafana and Jaeger run only with `--profile observability`; Prometheus's
    targets are the compose services at the metrics ports compose gives them; its rules are mounted."""
    services = COMPOSE["services"]
    for name in ("prometheus", "alertmanager", "grafana", "jaeger"):
        assert services[name]["profiles"] == ["observability"], name
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in prometheus["scrape_configs"]}
    expected = {
        "b2x-gateway": f"gateway:{services['gateway']['environment']['B2X_GATEWAY_PORT']}",
        "b2x-jobs": f"jobs:{services['jobs']['environment']['B2X_JOBS_METRICS_PORT']}",
        "b2x-health": f"health:{services['health']['environment']['B2X_HEALTH_METRICS_PORT']}",
        "b2x-probes": f"probes:{services['probes']['environment']['B2X_PROBES_METRICS_PORT']}",
    }
    assert {k: v for k, v in targets.items() if k.startswith("b2x-")} == expected
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert prometheus["rule_files"] == ["rules/*.rules.yml"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
