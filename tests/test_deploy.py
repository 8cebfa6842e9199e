"""deploy/: the Kubernetes manifests and GitOps examples, checked offline.

Every overlay is rendered with `kubectl kustomize`, every object validated against the
Kubernetes schemas of the version docs/deploy.md documents (kubernetes-validate, strict),
and each default a platform team expects is asserted in a test of its own, so that a
regression names itself. The configuration each overlay ships in its ConfigMap is checked
by `souverain config check`, as the CI gate (deploy/ci/sovereignty-gate.sh) does, and the
gate itself is run on a real change that lowers a route's sovereignty.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from souverain import __version__
from souverain.state.config import PostgresStateConfig

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# The Kubernetes minor the manifests are validated for; docs/deploy.md and the Pod
# Security labels name the same one (tests below hold the three together).
K8S_VERSION = "1.34"
OVERLAYS = ("single", "production", "vllm")
GATEWAY_OVERLAYS = ("single", "production")
GATEWAY_LABELS = {"app.kubernetes.io/name": "souverain", "app.kubernetes.io/component": "gateway"}
IMAGE_UID = 10001
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}
# Volume types Pod Security "restricted" allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|PIN|CREDENTIAL", re.IGNORECASE)


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl (with kustomize) is required to render deploy/ and is not on PATH")
        pytest.skip("kubectl (with kustomize) is not installed: deploy/ cannot be rendered here")
    return path


@functools.cache
def _render(directory: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run([_kubectl(), "kustomize", directory], capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"kubectl kustomize {directory} failed:\n{out.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def render(overlay: str) -> list[dict[str, Any]]:
    return list(_render(str(DEPLOY / "overlays" / overlay)))


def objects(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in render(overlay) if o["kind"] == kind]


def one(overlay: str, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects(overlay, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(overlay: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in render(overlay):
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        spec = obj["spec"]
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        pod = spec if obj["kind"] == "Pod" else spec["template"]["spec"]
        yield f"{obj['kind']}/{obj['metadata']['name']}", pod


def containers(overlay: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, pod spec, container) for every container and init container."""
    for where, pod in pod_specs(overlay):
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            yield f"{where}/{c['name']}", pod, c


def gateway(overlay: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(Deployment, pod spec, container) of the gateway."""
    deployment = one(overlay, "Deployment", "souverain")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "gateway"]
    return deployment, pod, container


def vllm() -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, container) of vLLM."""
    pod = one("vllm", "Deployment", "vllm")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def gateway_config(overlay: str) -> dict[str, str]:
    """The gateway's ConfigMap data: the files mounted at /etc/souverain."""
    _, pod, _ = gateway(overlay)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    return one(overlay, "ConfigMap", volume["configMap"]["name"])["data"]


def write_config(overlay: str, directory: Path) -> Path:
    """The overlay's configuration files in `directory`, routing.pipes pointed at the copy."""
    data = gateway_config(overlay)
    for name, text in data.items():
        (directory / name).write_text(text)
    path = directory / "souverain.yaml"
    if "pipes.yaml" in data:
        text = path.read_text()
        assert "pipes: /etc/souverain/pipes.yaml" in text
        path.write_text(text.replace("pipes: /etc/souverain/pipes.yaml", f"pipes: {directory / 'pipes.yaml'}"))
    return path


def placeholders(text: str) -> dict[str, str]:
    """A placeholder value (never a secret) for each ${VARIABLE} a configuration names."""
    return {name: "placeholder-not-a-secret" for name in ENV_REF.findall(text)}


def souverain(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "souverain", *args], capture_output=True, text=True, check=False, cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
    )  # fmt: skip


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are checked here: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


# --- rendering and schemas -------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders(overlay: str) -> None:
    rendered = render(overlay)
    assert rendered, f"{overlay} renders to nothing"
    for obj in rendered:
        assert obj.get("apiVersion") and obj.get("kind") and obj.get("metadata", {}).get("name"), obj


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_documented_kubernetes_version(overlay: str) -> None:
    import kubernetes_validate

    for obj in render(overlay):
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{overlay}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.absolute_path)}"
            )


def test_the_schema_check_rejects_what_it_should() -> None:
    """The validator is strict: a misspelt field of a real overlay's Deployment fails."""
    import kubernetes_validate

    deployment, _, _ = gateway("production")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_docs_and_pod_security_labels_name_the_validated_version() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f"Kubernetes {K8S_VERSION}" in docs
    for overlay in OVERLAYS:
        for ns in objects(overlay, "Namespace"):
            for mode in ("enforce", "audit", "warn"):
                assert ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}-version"] == f"v{K8S_VERSION}"


# --- Pod Security "restricted" -----------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_lives_in_a_namespace_that_enforces_restricted(overlay: str) -> None:
    namespaces = {ns["metadata"]["name"]: ns["metadata"].get("labels", {}) for ns in objects(overlay, "Namespace")}
    assert namespaces, f"{overlay} declares no namespace"
    for labels in namespaces.values():
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    for obj in render(overlay):
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") in namespaces, f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_as_non_root(overlay: str) -> None:
    for where, pod, c in containers(overlay):
        ctx, pod_ctx = c.get("securityContext", {}), pod.get("securityContext", {})
        assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, where
        assert ctx.get("runAsUser", pod_ctx.get("runAsUser")) not in (None, 0), where


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_the_gateway_runs_as_the_images_user(overlay: str) -> None:
    _, pod, c = gateway(overlay)
    ctx, pod_ctx = c["securityContext"], pod["securityContext"]
    assert ctx["runAsUser"] == ctx["runAsGroup"] == pod_ctx["runAsUser"] == pod_ctx["fsGroup"] == IMAGE_UID


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_a_read_only_root_filesystem(overlay: str) -> None:
    for where, _, c in containers(overlay):
        assert c.get("securityContext", {}).get("readOnlyRootFilesystem") is True, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_drops_all_capabilities(overlay: str) -> None:
    for where, _, c in containers(overlay):
        caps = c.get("securityContext", {}).get("capabilities", {})
        assert caps.get("drop") == ["ALL"], where
        assert not caps.get("add"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_container_can_escalate_privileges(overlay: str) -> None:
    for where, _, c in containers(overlay):
        ctx = c.get("securityContext", {})
        assert ctx.get("allowPrivilegeEscalation") is False, where
        assert ctx.get("privileged") in (None, False), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_uses_the_runtime_default_seccomp_profile(overlay: str) -> None:
    for where, pod, c in containers(overlay):
        profile = c.get("securityContext", {}).get("seccompProfile") or pod.get("securityContext", {}).get(
            "seccompProfile"
        )
        assert profile == {"type": "RuntimeDefault"}, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_touches_the_host(overlay: str) -> None:
    for where, pod in pod_specs(overlay):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(field), f"{where}: {field}"
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUMES, f"{where}: volume {volume['name']} is {kinds}"
    for where, _, c in containers(overlay):
        assert all("hostPort" not in p for p in c.get("ports", [])), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_gets_a_kubernetes_api_token(overlay: str) -> None:
    for where, pod in pod_specs(overlay):
        assert pod.get("automountServiceAccountToken") is False, where


# --- probes and resources ----------------------------------------------------------------


def _probe_port(c: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in c["ports"] if p["name"] == port]
    return number


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_the_gateway_is_alive_on_healthz_and_ready_on_readyz(overlay: str) -> None:
    _, _, c = gateway(overlay)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert _probe_port(c, c[probe]) == 8080


def test_vllm_has_probes_on_its_health_endpoint() -> None:
    _, c = vllm()
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"
        assert _probe_port(c, c[probe]) == 8000


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resource_requests_and_limits(overlay: str) -> None:
    for where, _, c in containers(overlay):
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"


# --- replicas, disruption budget, autoscaler ---------------------------------------------


def test_production_has_an_autoscaler_for_several_gateway_replicas() -> None:
    hpa = one("production", "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "souverain")
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # The autoscaler owns the count: a `replicas` in Git would be reset on every sync.
    deployment, _, _ = gateway("production")
    assert "replicas" not in deployment["spec"]


def test_production_has_a_disruption_budget_for_the_gateway() -> None:
    pdb = one("production", "PodDisruptionBudget")
    deployment, _, _ = gateway("production")
    assert labels_match(pdb["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
    hpa = one("production", "HorizontalPodAutoscaler")
    # It allows a drain (something may go) and keeps most replicas serving.
    if "maxUnavailable" in pdb["spec"]:
        assert 1 <= pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    else:
        assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_production_spreads_gateway_replicas_over_nodes() -> None:
    _, pod, _ = gateway("production")
    keys = {t["topologyKey"]: t for t in pod["topologySpreadConstraints"]}
    assert keys["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert labels_match(keys["kubernetes.io/hostname"]["labelSelector"], GATEWAY_LABELS)


def test_single_runs_one_replica_replaced_not_surged() -> None:
    deployment, _, _ = gateway("single")
    assert deployment["spec"]["replicas"] == 1
    # SQLite has one writer and the volume is ReadWriteOnce: the old pod goes first.
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not objects("single", "HorizontalPodAutoscaler")


def test_single_keeps_state_on_a_persistent_volume() -> None:
    _, pod, c = gateway("single")
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/var/lib/souverain"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = one("single", "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_the_service_reaches_the_gateways_port(overlay: str) -> None:
    service = one(overlay, "Service", "souverain")
    deployment, _, c = gateway(overlay)
    assert service["spec"]["selector"] == GATEWAY_LABELS
    assert labels_match(
        {"matchLabels": service["spec"]["selector"]}, deployment["spec"]["template"]["metadata"]["labels"]
    )
    (port,) = service["spec"]["ports"]
    assert _probe_port(c, {"httpGet": {"port": port["targetPort"]}}) == 8080


# --- network policy: the air gap, enforced by the cluster --------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespace_denies_all_traffic_by_default(overlay: str) -> None:
    for ns in objects(overlay, "Namespace"):
        name = ns["metadata"]["name"]
        deny = [
            p for p in objects(overlay, "NetworkPolicy")
            if p["metadata"]["namespace"] == name and p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")
        ]  # fmt: skip
        assert deny, f"{overlay}: no default-deny policy in namespace {name}"


@pytest.mark.parametrize("overlay", ("single", "vllm"))
def test_single_and_vllm_allow_no_egress_at_all(overlay: str) -> None:
    for policy in objects(overlay, "NetworkPolicy"):
        assert not policy["spec"].get("egress"), f"{overlay}: {policy['metadata']['name']} allows egress"


def _egress_rules(overlay: str) -> list[dict[str, Any]]:
    return [r for p in objects(overlay, "NetworkPolicy") for r in p["spec"].get("egress", [])]


def test_production_egress_goes_only_to_dns_postgres_and_the_model_endpoint() -> None:
    allowed = set()
    for rule in _egress_rules("production"):
        assert rule.get("to"), f"an egress rule without `to` allows every destination: {rule}"
        assert rule.get("ports"), f"an egress rule without `ports` allows every port: {rule}"
        for peer in rule["to"]:
            assert "ipBlock" not in peer, f"production allows an address block: {peer}"
            ns = (
                peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name", "souverain")
            )
            pods = tuple(sorted(peer["podSelector"]["matchLabels"].items()))
            for port in rule["ports"]:
                allowed.add((ns, pods, port["port"], port["protocol"]))
    assert allowed == {
        ("kube-system", (("k8s-app", "kube-dns"),), 53, "UDP"),
        ("kube-system", (("k8s-app", "kube-dns"),), 53, "TCP"),
        ("souverain", (("app.kubernetes.io/name", "postgresql"),), 5432, "TCP"),
        (
            "souverain-vllm",
            (("app.kubernetes.io/component", "engine"), ("app.kubernetes.io/name", "vllm")),
            8000,
            "TCP",
        ),
    }


def test_production_egress_rules_select_the_gateway() -> None:
    deployment, _, _ = gateway("production")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for policy in objects("production", "NetworkPolicy"):
        if policy["spec"].get("egress"):
            assert labels_match(policy["spec"]["podSelector"], labels)


def test_production_egress_reaches_exactly_the_hosts_the_configuration_names(tmp_path: Path) -> None:
    """Each model endpoint and database host of the configuration is allowed by the air
    gap and has its egress rule, selecting the pods behind that Service and its port."""
    from psycopg.conninfo import conninfo_to_dict

    from souverain.config import OpenAIHTTPModel, load_config

    text = gateway_config("production")["souverain.yaml"]
    config = load_config(write_config("production", tmp_path), env={**os.environ, **placeholders(text)})
    rules = _egress_rules("production")
    vllm_service = one("vllm", "Service", "vllm")
    vllm_pod_labels = one("vllm", "Deployment", "vllm")["spec"]["template"]["metadata"]["labels"]
    _, vllm_container = vllm()
    endpoints = [urlsplit(m.base_url) for m in config.models if isinstance(m, OpenAIHTTPModel)]
    assert endpoints
    for url in endpoints:
        assert url.hostname in config.air_gap.allowed_hosts
        name, namespace, *_ = url.hostname.split(".")
        assert (name, namespace) == (vllm_service["metadata"]["name"], vllm_service["metadata"]["namespace"])
        (port,) = [p for p in vllm_service["spec"]["ports"] if p["port"] == url.port]
        # NetworkPolicy ports are the pod's, not the Service's.
        pod_port = _probe_port(vllm_container, {"httpGet": {"port": port["targetPort"]}})
        matching = [
            r for r in rules for peer in r["to"]
            if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == namespace
            and labels_match(peer["podSelector"], vllm_pod_labels)
            and any(p["port"] == pod_port for p in r["ports"])
        ]  # fmt: skip
        assert matching, f"no egress rule reaches {url.hostname}:{url.port}"
    assert isinstance(config.state, PostgresStateConfig), "production keeps its state in PostgreSQL"
    dsn = conninfo_to_dict(config.state.dsn)
    assert dsn["host"] in config.air_gap.allowed_hosts
    assert any(int(dsn.get("port", 5432)) == p["port"] for r in rules for p in r["ports"])


def test_vllm_accepts_connections_only_from_the_gateway() -> None:
    deployment, _, _ = gateway("production")
    gateway_labels = deployment["spec"]["template"]["metadata"]["labels"]
    ingress = [r for p in objects("vllm", "NetworkPolicy") for r in p["spec"].get("ingress", [])]
    assert ingress
    for rule in ingress:
        assert rule.get("from") and rule.get("ports")
        for peer in rule["from"]:
            assert peer["namespaceSelector"]["matchLabels"] == {
                "kubernetes.io/metadata.name": deployment["metadata"]["namespace"]
            }
            assert labels_match(peer["podSelector"], gateway_labels)


# --- configuration: a ConfigMap, checked by `souverain config check` ---------------------


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_config_check_accepts_each_overlays_configmap(overlay: str, tmp_path: Path) -> None:
    path = write_config(overlay, tmp_path)
    result = souverain("config", "check", str(path), env=placeholders(path.read_text()), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "air gap on" in result.stdout


def test_config_check_would_catch_a_broken_configmap(tmp_path: Path) -> None:
    """The check above can fail: the production config with the vLLM host left out of the
    air gap's allowed hosts is refused."""
    path = write_config("production", tmp_path)
    path.write_text(path.read_text().replace("    - vllm.souverain-vllm.svc\n", ""))
    result = souverain("config", "check", str(path), env=placeholders(path.read_text()), cwd=tmp_path)
    assert result.returncode != 0 and "air gap is on" in result.stderr


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_the_configmap_is_where_the_gateway_looks(overlay: str) -> None:
    _, pod, c = gateway(overlay)
    env = env_of(c)
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    config_dir = os.path.dirname(env["SOUVERAIN_CONFIG"]["value"])
    assert env["SOUVERAIN_CONFIG"]["value"] == "/etc/souverain/souverain.yaml"
    assert mounts[config_dir]["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[config_dir]["name"]]
    assert "souverain.yaml" in one(overlay, "ConfigMap", volume["configMap"]["name"])["data"]
    # One writable volume at the state directory, which the configuration names too.
    config = yaml.safe_load(gateway_config(overlay)["souverain.yaml"])
    assert env["SOUVERAIN_STATE_DIR"]["value"] == config["state_dir"] == "/var/lib/souverain"
    assert "/var/lib/souverain" in mounts and not mounts["/var/lib/souverain"].get("readOnly")
    # The gateway listens where the Service and the probes expect it.
    assert config["server"]["host"] == "0.0.0.0"
    assert config["server"]["port"] == c["ports"][0]["containerPort"] == 8080


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_the_configmap_name_changes_with_its_content(overlay: str) -> None:
    """A generated name (content hash): a configuration change rolls the pods, and a
    rollback brings the old file back."""
    _, pod, _ = gateway(overlay)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert re.fullmatch(r"souverain-config-[a-z0-9]{10}", volume["configMap"]["name"])


def test_production_routes_build_and_its_vllm_route_may_carry_every_class(tmp_path: Path) -> None:
    """The gateway's router, built from the production ConfigMap as at start: the model's
    route exists in the shipped pipes file and the default policy lets it carry every
    class, special data included (an in-house route)."""
    from souverain.config import load_config
    from souverain.routing.decide import unmet
    from souverain.routing.router import Router

    path = write_config("production", tmp_path)
    router = Router(load_config(path, env={**os.environ, **placeholders(path.read_text())}))
    (candidate,) = router.candidates
    assert candidate.route == "cluster-vllm"
    for data_class in ("public", "internal", "confidential", "personal", "special"):
        assert unmet(router.default_policy.rule(data_class), candidate.profile) == [], data_class


def test_production_pipes_file_meets_its_requirements(tmp_path: Path) -> None:
    write_config("production", tmp_path)
    result = souverain("pipes", "check", str(tmp_path / "pipes.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"cluster-vllm\s+in_house \(4\)\s+non-EU access: no\s+ok", result.stdout)


def test_the_single_overlays_configuration_serves_on_a_volume_as_kubernetes_mounts_it(
    tmp_path: Path, start_server
) -> None:
    """The gateway started with the single overlay's ConfigMap, on a state directory
    shaped like the pod's volume (group-owned, setgid and group-writable: what `fsGroup`
    makes of it), comes up alive on /healthz and ready on /readyz with the embedded model,
    and keeps the files it makes private."""
    import httpx

    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o2770)
    config = gateway_config("single")["souverain.yaml"]
    server = start_server(config, env={"SOUVERAIN_STATE_DIR": str(volume)}, serve_args=["--host", "127.0.0.1"])
    assert httpx.get(f"{server.url}/healthz", timeout=60).status_code == 200
    ready = httpx.get(f"{server.url}/readyz", timeout=60)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    made = [p for p in volume.iterdir() if p.is_file()]
    assert made and all(p.stat().st_mode & 0o077 == 0 for p in made), [(p.name, oct(p.stat().st_mode)) for p in made]


# --- secrets by reference ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_rendered(overlay: str) -> None:
    assert not objects(overlay, "Secret")


def test_no_kustomization_generates_a_secret() -> None:
    for path in DEPLOY.rglob("kustomization.yaml"):
        assert "secretGenerator" not in yaml.safe_load(path.read_text()), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_like_variables_come_from_secret_references(overlay: str) -> None:
    for where, _, c in containers(overlay):
        for name, var in env_of(c).items():
            if SECRET_NAME.search(name):
                assert "value" not in var and "secretKeyRef" in var.get("valueFrom", {}), f"{where}: {name}"


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_every_variable_the_configuration_names_is_set_from_a_secret(overlay: str) -> None:
    text = gateway_config(overlay)["souverain.yaml"]
    env = env_of(gateway(overlay)[2])
    for name in ENV_REF.findall(text):
        assert "secretKeyRef" in env.get(name, {}).get("valueFrom", {}), (
            f"{overlay}: ${{{name}}} is not set from a Secret"
        )


def test_the_database_password_is_not_in_the_dsn() -> None:
    from psycopg.conninfo import conninfo_to_dict

    config = yaml.safe_load(gateway_config("production")["souverain.yaml"])
    assert "password" not in conninfo_to_dict(config["state"]["dsn"])
    env = env_of(gateway("production")[2])
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "souverain-postgres"


def test_vllm_and_the_gateway_share_one_api_key_secret() -> None:
    _, c = vllm()
    ours = env_of(gateway("production")[2])["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    theirs = env_of(c)["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ours == theirs


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", GATEWAY_OVERLAYS)
def test_the_gateway_image_is_souverain_at_the_package_version(overlay: str) -> None:
    _, _, c = gateway(overlay)
    _, _, rest = c["image"].partition("/")
    assert rest, f"{overlay}: the image names no registry: {c['image']}"
    assert c["image"].endswith(f"/souverain:{__version__}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_is_pinned(overlay: str) -> None:
    for where, _, c in containers(overlay):
        name = c["image"].rsplit("/", 1)[-1]
        assert ":" in name or "@sha256:" in c["image"], f"{where}: {c['image']} has no tag"
        assert not name.endswith(":latest"), f"{where}: {c['image']}"


# --- vLLM: a Mistral model from a volume, never downloaded -------------------------------


def _args(c: dict[str, Any]) -> dict[str, str | None]:
    """`--flag=value` and `--flag` arguments, with $(VAR) expanded from the container's env."""
    env = {k: v.get("value", "") for k, v in env_of(c).items()}
    out: dict[str, str | None] = {}
    for arg in c["args"]:
        arg = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], arg)
        if arg.startswith("--"):
            flag, _, value = arg.partition("=")
            out[flag] = value if value else None
    return out


def test_vllm_never_downloads_and_reads_weights_from_a_read_only_volume() -> None:
    pod, c = vllm()
    env = env_of(c)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        assert env[name]["value"] == "1", name
    model = c["args"][0]
    assert c["command"] == ["vllm", "serve"] and model.startswith("/")
    (mount,) = [m for m in c["volumeMounts"] if model.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    one("vllm", "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])


def test_vllm_sends_no_usage_statistics() -> None:
    env = env_of(vllm()[1])
    assert env["VLLM_NO_USAGE_STATS"]["value"] == "1" and env["DO_NOT_TRACK"]["value"] == "1"


def test_vllm_serves_the_mistral_formats_tools_and_reasoning() -> None:
    args = _args(vllm()[1])
    assert args["--tokenizer-mode"] == args["--config-format"] == args["--load-format"] == "mistral"
    assert args["--tool-call-parser"] == "mistral" and "--enable-auto-tool-choice" in args
    assert args["--reasoning-parser"] == "mistral"


def test_vllm_tensor_parallel_size_is_the_gpus_it_gets() -> None:
    _, c = vllm()
    size = int(_args(c)["--tensor-parallel-size"] or 0)
    assert size >= 1
    assert int(c["resources"]["limits"]["nvidia.com/gpu"]) == int(c["resources"]["requests"]["nvidia.com/gpu"]) == size


def test_vllm_has_shared_memory_for_its_tensor_parallel_workers() -> None:
    pod, c = vllm()
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"


def test_the_gateway_asks_vllm_for_the_model_it_serves(tmp_path: Path) -> None:
    from souverain.config import OpenAIHTTPModel, load_config

    path = write_config("production", tmp_path)
    config = load_config(path, env={**os.environ, **placeholders(path.read_text())})
    (model,) = [m for m in config.models if isinstance(m, OpenAIHTTPModel)]
    assert (model.upstream_model or model.name) == _args(vllm()[1])["--served-model-name"]
    assert model.flavor == "vllm"
    service = one("vllm", "Service", "vllm")
    assert urlsplit(model.base_url).port == service["spec"]["ports"][0]["port"]


# --- GitOps -------------------------------------------------------------------------------
# Argo CD and Flux objects are custom resources: kubernetes-validate has no schema for
# them (it knows the built-in kinds only), so they are checked here for the fields their
# controllers need and for pointing at what exists.


def gitops(tool: str) -> list[dict[str, Any]]:
    return list(_render(str(DEPLOY / "gitops" / tool)))


def _overlay_namespaces(path: str) -> set[str]:
    overlay = Path(path.removeprefix("./")).name
    assert (DEPLOY / "overlays" / overlay / "kustomization.yaml").is_file(), path
    return {o["metadata"]["namespace"] for o in render(overlay) if "namespace" in o["metadata"]}


def test_kubernetes_validate_has_no_schema_for_gitops_kinds() -> None:
    """Why the objects below are checked by hand: the validator refuses them."""
    import kubernetes_validate

    for obj in gitops("argocd") + gitops("flux"):
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_argocd_applications_deploy_the_overlays() -> None:
    objs = gitops("argocd") + [yaml.safe_load((DEPLOY / "gitops" / "argocd" / "single.yaml").read_text())]
    projects = {o["metadata"]["name"]: o for o in objs if o["kind"] == "AppProject"}
    apps = [o for o in objs if o["kind"] == "Application"]
    assert {a["spec"]["source"]["path"] for a in apps} == {f"deploy/overlays/{o}" for o in OVERLAYS}
    for app in apps:
        assert app["apiVersion"] == "argoproj.io/v1alpha1"
        spec = app["spec"]
        project = projects[spec["project"]]
        assert spec["source"]["repoURL"] in project["spec"]["sourceRepos"] and spec["source"]["targetRevision"]
        # The destination is the overlay's namespace, and the project allows it.
        assert _overlay_namespaces(spec["source"]["path"]) == {spec["destination"]["namespace"]}
        assert {"server": spec["destination"]["server"], "namespace": spec["destination"]["namespace"]} in project[
            "spec"
        ]["destinations"]
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    waves = {
        a["metadata"]["name"]: int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for a in apps
        if "annotations" in a["metadata"]
    }
    assert waves["souverain-vllm"] < waves["souverain-production"]


def test_flux_kustomizations_deploy_the_overlays_from_the_git_source() -> None:
    objs = gitops("flux") + [yaml.safe_load((DEPLOY / "gitops" / "flux" / "single.yaml").read_text())]
    sources = {o["metadata"]["name"]: o for o in objs if o["kind"] == "GitRepository"}
    kustomizations = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Kustomization"}
    for source in sources.values():
        assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1" and source["spec"]["url"] and source["spec"]["ref"]
    paths = set()
    for name, k in kustomizations.items():
        assert k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        spec = k["spec"]
        assert spec["sourceRef"]["kind"] == "GitRepository" and spec["sourceRef"]["name"] in sources, name
        assert spec["prune"] is True and spec["interval"]
        _overlay_namespaces(spec["path"])
        paths.add(spec["path"])
        for dep in spec.get("dependsOn", []):
            assert dep["name"] in kustomizations, f"{name} depends on a missing {dep['name']}"
    assert paths == {f"./deploy/overlays/{o}" for o in OVERLAYS}
    assert kustomizations["souverain-production"]["spec"]["dependsOn"] == [{"name": "souverain-vllm"}]


# --- the pull-request gate ---------------------------------------------------------------

GATE = DEPLOY / "ci" / "sovereignty-gate.sh"


def _tree(tmp: Path, name: str) -> Path:
    """A copy of what the gate reads (deploy/, examples/) as a checkout would have it."""
    root = tmp / name
    for part in ("deploy", "examples"):
        shutil.copytree(ROOT / part, root / part)
    return root


def _changed(tmp: Path, file: str, old: str, new: str) -> tuple[Path, Path]:
    """A base tree, and a head tree whose `file` has `old` replaced by `new`."""
    base, head = _tree(tmp, "base"), _tree(tmp, "head")
    path = head / file
    path.write_text(path.read_text().replace(old, new))
    return base, head


def _gate(base: Path, head: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "SOUVERAIN": f"{sys.executable} -m souverain"}
    return subprocess.run(["sh", str(GATE), str(base), str(head)], capture_output=True, text=True, env=env, check=False)


def test_the_gate_passes_the_tree_as_it_is(tmp_path: Path) -> None:
    result = _gate(_tree(tmp_path, "base"), _tree(tmp_path, "head"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sovereignty gate: passed" in result.stdout
    assert "== souverain config check deploy/overlays/production/souverain.yaml" in result.stdout
    assert "== souverain pipes diff deploy/overlays/production/pipes.yaml" in result.stdout


def test_the_gate_fails_when_a_change_lowers_a_personal_data_routes_sovereignty(tmp_path: Path) -> None:
    """Two real pipes files: the example's Azure route moved from the EU data zone to the
    global deployment (level eu_resident → none), on a route that carries personal data."""
    base, head = _changed(
        tmp_path,
        "examples/pipes/pipes.yaml",
        "template: azure-foundry-mistral-eu",
        "template: azure-foundry-mistral-global",
    )
    result = _gate(base, head)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "LOST SOVEREIGNTY" in result.stdout
    assert "FAIL: examples/pipes/pipes.yaml: a route that may carry personal data lost sovereignty" in result.stdout
    # The reverse change is an improvement: it passes.
    assert _gate(head, base).returncode == 0


def test_the_gate_fails_when_the_production_route_leaves_the_house(tmp_path: Path) -> None:
    base, head = _changed(
        tmp_path, "deploy/overlays/production/pipes.yaml", "template: onprem-vllm", "template: azure-foundry-mistral-eu"
    )
    result = _gate(base, head)
    assert result.returncode == 1
    assert (
        "FAIL: deploy/overlays/production/pipes.yaml: a route that may carry personal data lost sovereignty"
        in result.stdout
    )


def test_the_gate_fails_on_an_invalid_configuration(tmp_path: Path) -> None:
    base, head = _changed(tmp_path, "deploy/overlays/production/souverain.yaml", "flavor: vllm", "flavor: vlm")
    result = _gate(base, head)
    assert result.returncode == 1
    assert "FAIL: deploy/overlays/production/souverain.yaml is not a valid configuration" in result.stdout


def test_the_ci_examples_run_the_gate_on_every_pull_request() -> None:
    github = yaml.safe_load((DEPLOY / "ci" / "github-actions.yaml").read_text())
    # PyYAML reads the key `on` as True (YAML 1.1).
    assert "pull_request" in github[True]
    steps = [s.get("run", "") for job in github["jobs"].values() for s in job["steps"]]
    assert any("deploy/ci/sovereignty-gate.sh base head" in s for s in steps)
    gitlab = yaml.safe_load((DEPLOY / "ci" / "gitlab-ci.yml").read_text())
    assert gitlab[".on-merge-requests"]["rules"][0]["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    assert any("deploy/ci/sovereignty-gate.sh" in line for line in gitlab["sovereignty"]["script"])
    assert gitlab["sovereignty"]["needs"] == ["base-tree"]
