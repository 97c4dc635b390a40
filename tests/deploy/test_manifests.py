"""Every Kustomize overlay renders, validates strictly against Kubernetes' schemas, and agrees with the code:
flags the binaries accept, a config the router loads, grace periods that fit, keys wired, pods locked down."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest

from core.worker_token import TOKEN_ENV
from gpu_worker.main import build_parser as worker_parser
from gpu_worker.main import security_from_args
from router.backends.presets import PRESETS
from router.config.loader import load_config
from router.main import build_parser as router_parser
from router.main import config_from_args
from router.readiness import LIVENESS
from router.security.exposure import check_exposure
from tests.deploy.render import OVERLAYS, Doc, container, flag, of_kind, one, render

# Native gRPC probes are GA from 1.27; the newest schemas kubernetes-validate ships are checked too.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
# Custom resources of cert-manager, KEDA and the Prometheus Operator: no schema ships with kubernetes-validate,
# so the tests below check what matters in them.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
overlays = pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)


def test_there_are_the_documented_overlays() -> None:
    assert {path.name for path in OVERLAYS} >= {"cpu-dev", "gpu", "gpu-autoscaling"}


@overlays
def test_renders_and_validates_strictly(overlay: Path) -> None:
    for doc in render(overlay):
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the field


@overlays
def test_servers_accept_the_arguments_and_would_not_refuse_to_start(
    overlay: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(overlay)
    router = one(docs, "Deployment", "modelyard-router")
    worker = one(docs, "Deployment", "modelyard-worker")
    # What the pods get from their Secrets: the worker token (API keys come from the required keys Secret).
    for deployment in (router, worker):
        names = {e["name"] for e in container(deployment)["env"]}
        assert TOKEN_ENV in names, deployment["metadata"]["name"]
    monkeypatch.setenv(TOKEN_ENV, "t" * 32)
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    config_file = tmp_path / "router.yaml"
    config_file.write_text(_router_config(docs, router))
    router_args = _expanded(container(router)["args"])
    router_args[router_args.index("--config") + 1] = str(config_file)
    config = config_from_args(router_parser().parse_args(router_args))  # argparse exits on an unknown flag
    check_exposure(config, has_api_keys=True)  # the router's own refusal to run in the open
    security_from_args(worker_parser().parse_args(_expanded(container(worker)["args"])))


@overlays
def test_router_config_loads_and_its_hash_rolls_the_pods(overlay: Path, tmp_path: Path) -> None:
    docs = render(overlay)
    router = one(docs, "Deployment", "modelyard-router")
    config_volume = next(v for v in router["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    assert re.fullmatch(r"modelyard-router-config-[a-z0-9]{10}", config_volume["configMap"]["name"]), "hashed"
    path = tmp_path / "router.yaml"
    path.write_text(_router_config(docs, router))
    config = load_config(path, env={})
    args = container(router)["args"]
    assert flag(args, "--config") == "/etc/modelyard/config/router.yaml"

    # The pod outlives the preStop pause, the drain (NOT_SERVING, clients moved off, arrivals served) and the
    # grace the router gives calls in flight.
    grace = float(flag(args, "--grace-seconds") or config.grace_seconds)
    drain = float(flag(args, "--drain-seconds") or config.shutdown.drain_s)
    pause = float(container(router)["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert router["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > pause + drain + grace
    # Readiness asks for "" (off while warming up and draining); liveness for the service that stays on.
    probes = container(router)
    assert _probed_service(probes["readinessProbe"]) == ""
    assert _probed_service(probes["livenessProbe"]) == LIVENESS


@overlays
def test_worker_drain_fits_its_pod(overlay: Path) -> None:
    worker = one(render(overlay), "Deployment", "modelyard-worker")
    grace = float(flag(container(worker)["args"], "--grace-seconds") or 30)
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace


@overlays
def test_every_provider_key_comes_from_one_secret(overlay: Path) -> None:
    env = container(one(render(overlay), "Deployment", "modelyard-router"))["env"]
    from_secret = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in e.get("valueFrom", {})
    }
    wanted = {preset.api_key_env for preset in PRESETS.values() if preset.api_key_env}
    assert wanted <= set(from_secret)
    assert {from_secret[name]["name"] for name in wanted} == {"modelyard-provider-keys"}
    assert all(from_secret[name]["key"] == name for name in wanted)


@overlays
def test_pods_are_locked_down(overlay: Path) -> None:
    docs = render(overlay)
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, deployment["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        security = container(deployment)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
    # API keys are required: the router must not run open on a pod network.
    router = one(docs, "Deployment", "modelyard-router")
    keys = next(v for v in router["spec"]["template"]["spec"]["volumes"] if v["name"] == "api-keys")
    assert keys["secret"]["secretName"] == "modelyard-api-keys"
    assert not keys["secret"].get("optional", False)


@overlays
def test_clients_see_no_metrics_and_workers_take_calls_only_from_routers(overlay: Path) -> None:
    docs = render(overlay)
    client_ports = one(docs, "Service", "modelyard-router")["spec"]["ports"]
    assert [port["name"] for port in client_ports] == ["grpc"]

    policy = one(docs, "NetworkPolicy", "modelyard-worker")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    grpc_rules = [rule for rule in policy["spec"]["ingress"] if {p["port"] for p in rule["ports"]} == {50061}]
    assert len(grpc_rules) == 1
    assert grpc_rules[0]["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "modelyard",
                    "app.kubernetes.io/component": "router",
                }
            }
        }
    ]
    assert one(docs, "NetworkPolicy", "default-deny-ingress")["spec"]["podSelector"] == {}

    # The registry has a port of its own, which only workers may reach, and workers dial it.
    router = one(docs, "Deployment", "modelyard-router")
    registry_port = int(flag(container(router)["args"], "--registry-listen").rsplit(":", 1)[1])  # type: ignore[union-attr]
    router_policy = one(docs, "NetworkPolicy", "modelyard-router")
    (registry_rule,) = [
        r for r in router_policy["spec"]["ingress"] if {p["port"] for p in r["ports"]} == {registry_port}
    ]
    assert registry_rule["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "modelyard",
                    "app.kubernetes.io/component": "worker",
                }
            }
        }
    ]
    worker_env = {
        e["name"]: e.get("value") for e in container(one(docs, "Deployment", "modelyard-worker"))["env"]
    }
    assert worker_env["MODELYARD_ROUTER"].endswith(f":{registry_port}")


def test_gpu_pool_asks_for_gpus_shares_memory_and_keeps_weights() -> None:
    docs = render(next(path for path in OVERLAYS if path.name == "gpu"))
    worker = one(docs, "Deployment", "modelyard-worker")
    pod = worker["spec"]["template"]["spec"]
    resources = container(worker)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["nodeSelector"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(worker)["volumeMounts"]
    claim = volumes["cache"]["persistentVolumeClaim"]["claimName"]
    assert "emptyDir" not in volumes["cache"]
    one(docs, "PersistentVolumeClaim", claim)
    args = container(worker)["args"]
    assert flag(args, "--gpu-memory-utilization") is not None
    assert flag(args, "--tensor-parallel-size") == "1"
    assert flag(args, "--max-concurrency") is None, "vLLM's own batch size, not a cap"
    monitors = {m["metadata"]["name"]: m for m in of_kind(docs, "PodMonitor")}
    assert set(monitors) == {"modelyard-router", "modelyard-worker"}
    assert all(m["spec"]["podMetricsEndpoints"][0]["port"] == "metrics" for m in monitors.values())


@overlays
def test_gpu_workers_send_tokens_together_and_others_each_alone(
    overlay: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21: a GPU runs hundreds of sequences, so its worker batches each one's tokens every 20 ms."""
    monkeypatch.delenv("MODELYARD_STREAM_INTERVAL_MS", raising=False)
    worker = container(one(render(overlay), "Deployment", "modelyard-worker"))
    args = worker_parser().parse_args(_expanded(worker["args"]))
    on_gpu = "nvidia.com/gpu" in worker.get("resources", {}).get("limits", {})
    assert args.stream_interval_ms == (20.0 if on_gpu else 0.0), overlay.name


def test_autoscaling_counts_each_queued_request_once() -> None:
    docs = render(next(path for path in OVERLAYS if path.name == "gpu-autoscaling"))
    (scaled,) = of_kind(docs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "modelyard-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    # Every router exports every worker's queue: max over routers per worker, then sum over workers.
    assert re.fullmatch(
        r"sum\(max by \(worker\) \(modelyard_worker_waiting\{.*\}\)\)", trigger["metadata"]["query"]
    )
    assert "replicas" not in one(docs, "Deployment", "modelyard-worker")["spec"], "KEDA owns the count"


def _probed_service(probe: Doc) -> str:
    """The health service a probe asks for: kubelet's gRPC probe, or the tls overlay's core.health_probe."""
    if "grpc" in probe:
        return str(probe["grpc"].get("service", ""))
    command = probe["exec"]["command"]
    return command[command.index("--service") + 1] if "--service" in command else ""


def _router_config(docs: tuple[Doc, ...], router: Doc) -> str:
    volume = next(v for v in router["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    return str(one(docs, "ConfigMap", volume["configMap"]["name"])["data"]["router.yaml"])


def _expanded(args: list[str]) -> list[str]:
    """Container args with Kubernetes' $(VAR) references replaced by plausible values."""
    values = {"POD_NAME": "router-0", "POD_IP": "10.0.0.5", "MODELYARD_ROUTER": "router-headless:50051"}
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg) for arg in args]
