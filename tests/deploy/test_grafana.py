"""The Grafana dashboards in deploy/grafana: current with their generator, well formed, provisioned.

That every query names a metric the running stack exposes is checked against a real stack in
tests/e2e/test_operations.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))


def test_the_committed_dashboards_are_what_the_generator_writes() -> None:
    """Editing scripts/gen_dashboards.py without regenerating the JSON fails here (like the proto drift check)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_dashboards.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_five_dashboards_are_valid_and_every_panel_queries_the_provisioned_datasource() -> None:
    """Overview, jobs, connected services, probes/errors and internals; unique uids and panel ids, a
    Prometheus query in every target, panels on the 24-column grid."""
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        assert board["title"].startswith("B2X · ") and board["panels"], path.name
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
    assert uids == {"b2x-overview", "b2x-jobs", "b2x-services", "b2x-probes", "b2x-internals"}


def test_provisioning_points_grafana_at_the_dashboards_compose_mounts() -> None:
    """The dashboards provider reads the folder the compose file mounts the JSON into."""
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/b2x.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
