"""The alert rules in deploy/prometheus: valid for Prometheus, unit-tested, each with a runbook that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.test.yml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")


def alerting_rules() -> list[dict[str, object]]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_the_seed_rule_is_there_as_the_seed_names_it() -> None:
    """REQ-001's SchedulerJobFailureRate exists on scheduler_job_failures_total, critical, after 2 minutes."""
    rule = next(r for r in alerting_rules() if r.get("alert") == "SchedulerJobFailureRate")
    assert "rate(scheduler_job_failures_total[5m])" in str(rule["expr"]) and "> 0.1" in str(rule["expr"])
    assert rule["for"] == "2m" and rule["labels"] == {"severity": "critical"}  # type: ignore[comparison-overlap]
    assert rule["annotations"]["summary"] == "High scheduler job failure rate"  # type: ignore[index]


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section_that_exists() -> None:
    """An operator paged at night finds a section in docs/runbooks.md for every alert."""
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {heading.strip().lower() for heading in re.findall(r"^#{2,4} (.+)$", runbooks, re.MULTILINE)}
    for rule in alerting_rules():
        name = str(rule["alert"])
        labels, annotations = rule["labels"], rule["annotations"]
        assert labels["severity"] in ("critical", "warning"), name  # type: ignore[index]
        assert annotations["summary"] and annotations["description"], name  # type: ignore[index]
        assert annotations["runbook"] == f"docs/runbooks.md#{name.lower()}", name  # type: ignore[index]
        assert name.lower() in anchors, f"docs/runbooks.md has no section for {name}"


def test_every_alert_has_a_promtool_unit_test() -> None:
    """Each alert is exercised by at least one test case with input series (deploy/prometheus/tests)."""
    tested = {
        case["alertname"]
        for path in TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    missing = {str(rule["alert"]) for rule in alerting_rules()} - tested
    assert not missing, f"alerts without a firing test case: {sorted(missing)}"


@needs_promtool
def test_promtool_accepts_the_rules_and_the_compose_configuration() -> None:
    """`promtool check config` loads prometheus.yml and, through it, every rule file."""
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(ROOT / "deploy/prometheus/prometheus.yml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULES)} rule files found" in result.stdout


@needs_promtool
def test_the_rule_unit_tests_pass() -> None:
    """`promtool test rules`: each alert fires on the series it should, with its labels and annotations."""
    result = subprocess.run([PROMTOOL, "test", "rules", *map(str, TESTS)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TESTS)


@pytest.mark.skipif(
    shutil.which("amtool") is None, reason="amtool (Debian package prometheus-alertmanager) is not installed"
)
def test_amtool_accepts_the_alertmanager_configuration() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(ROOT / "deploy/alertmanager/alertmanager.yml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
