"""The Kubernetes manifests in deploy/kubernetes: schema-valid, and saying what the issue asks of them.

Rendering uses `kubectl kustomize` when kubectl is on the machine (it embeds kustomize); the schema check
uses kubernetes-validate (offline JSON schemas of the Kubernetes API), strict: unknown fields fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.health.registry.config import load_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
KUBE_VERSION = "1.30.0"
SERVICES = {"b2x-jobs": 50051, "b2x-health": 50052, "b2x-probes": 50053}
KUBECTL = shutil.which("kubectl")


def base_resources() -> list[dict[str, Any]]:
    """The base's resource files as written (no kustomize needed)."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((K8S / "base" / name).read_text())]


def rendered(path: Path) -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    result = subprocess.run([KUBECTL, "kustomize", str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_base_resource_is_valid_for_the_kubernetes_api() -> None:
    """Each Deployment, Service, Job, PDB, HPA and NetworkPolicy of the base passes the API schema, strictly."""
    docs = base_resources()
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"Deployment", "Service", "Job", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}


@pytest.mark.parametrize("target", ["base", "overlays/example"])
def test_kustomize_renders_a_valid_installation(target: str) -> None:
    """`kubectl kustomize` builds base and overlay; every rendered object is schema-valid; the generated
    ConfigMaps and Secrets are referenced under their hashed names."""
    docs = rendered(K8S / target)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    config_maps = by_kind(docs, "ConfigMap")
    for deployment in by_kind(docs, "Deployment").values():
        for source in deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]:
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps
    if target != "base":
        assert {d["metadata"]["namespace"] for d in docs} == {"b2x"}
        secrets = by_kind(docs, "Secret")
        assert {name.rsplit("-", 1)[0] for name in secrets} == {"b2x-credentials", "b2x-database"}
        for pod in [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]:
            for container in pod["containers"] + pod.get("initContainers", []):
                refs = [s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s]
                refs += [e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e]
                assert set(refs) <= set(secrets), refs


def test_deployments_probe_and_size_each_part_as_the_seed_says() -> None:
    """Gateway: HTTP liveness /health/live and readiness /health/ready with the seed's delays and periods,
    0.25 core / 256 MB. Services: native gRPC probes (readiness on "", liveness on b2x.liveness),
    0.5 core / 512 MB requested."""
    deployments = by_kind(base_resources(), "Deployment")
    gateway = deployments["b2x-gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert (gateway["livenessProbe"]["initialDelaySeconds"], gateway["livenessProbe"]["periodSeconds"]) == (10, 30)
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert (gateway["readinessProbe"]["initialDelaySeconds"], gateway["readinessProbe"]["periodSeconds"]) == (5, 10)
    assert gateway["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    for name, port in SERVICES.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["grpc"] == {"port": port}
        assert container["livenessProbe"]["grpc"] == {"port": port, "service": "b2x.liveness"}
        assert container["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
        assert container["resources"]["limits"]["memory"] == "512Mi"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_only_the_gateway_reaches_the_services_grpc_ports() -> None:
    """Ingress is denied by default; each service's gRPC port admits the gateway, plus the flows the
    architecture needs (probe agents → health, Job SDK workers → jobs) and nothing else."""
    policies = by_kind(base_resources(), "NetworkPolicy")
    deny = policies["b2x-default-deny-ingress"]["spec"]
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    allowed: dict[str, list[dict[str, Any]]] = {}
    for policy in policies.values():
        selector = policy["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule["ports"]}
            if selector in SERVICES and SERVICES[selector] in ports:
                allowed[selector] = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    gateway = {"app.kubernetes.io/name": "b2x-gateway"}
    assert allowed["b2x-probes"] == [gateway]
    assert allowed["b2x-health"] == [gateway, {"app.kubernetes.io/name": "b2x-probes"}]
    assert allowed["b2x-jobs"] == [gateway, {"b2x.io/jobs-client": "true"}]


def test_budgets_autoscalers_and_the_migration_job_point_at_real_things() -> None:
    """PDBs select existing Deployments, HPAs scale existing Deployments, the Job runs the migrations module."""
    docs = base_resources()
    deployments = by_kind(docs, "Deployment")
    for pdb in by_kind(docs, "PodDisruptionBudget").values():
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] in deployments
    for hpa in by_kind(docs, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    job = by_kind(docs, "Job")["b2x-migrate"]["spec"]["template"]["spec"]
    assert job["initContainers"][0]["command"][:3] == ["python", "-m", "services.common.roles"]
    assert job["containers"][0]["command"] == ["python", "-m", "services.common.migrate_all"]


def test_each_service_logs_in_as_its_own_role_and_only_the_migration_job_sees_the_administrator() -> None:
    """Least privilege (ADR 0011): a Deployment gets its own role's password and DSN, never another's and
    never the administrator's DSN; the migration Job creates the roles with the administrator's."""
    docs = base_resources()
    for name, deployment in by_kind(docs, "Deployment").items():
        service = name.removeprefix("b2x-")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        assert env["B2X_DATABASE_URL"]["value"].startswith(f"postgresql://b2x_{service}:$(DB_ROLE_PASSWORD)@")
        secret = env["DB_ROLE_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "b2x-database", "key": f"B2X_{service.upper()}_DB_PASSWORD"}
        sources = [s.get("secretRef", {}).get("name") for s in container.get("envFrom", [])]
        assert "b2x-database" not in sources, name
    job = by_kind(docs, "Job")["b2x-migrate"]["spec"]["template"]["spec"]
    assert "$(B2X_ADMIN_DATABASE_URL)" in job["initContainers"][0]["command"]
    assert {"name": "B2X_DATABASE_URL", "value": "$(B2X_ADMIN_DATABASE_URL)"} in job["containers"][0]["env"]


@pytest.mark.parametrize("path", ["base/services.yaml", "overlays/example/services.yaml"])
def test_the_declarative_files_in_the_config_maps_load(path: str) -> None:
    """The health service accepts the file each ConfigMap carries."""
    assert load_config(K8S / path).services
