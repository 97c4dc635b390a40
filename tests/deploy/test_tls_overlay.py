"""The `tls` overlay: cert-manager issues a CA and the routers' and workers' certificates, each side mounts its
own, checks the other's by a name that certificate carries, and every probe speaks TLS (core.health_probe)."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.health_probe import build_parser as probe_parser
from gpu_worker.main import build_parser as worker_parser
from router.main import build_parser as router_parser
from tests.deploy.render import OVERLAYS, Doc, container, of_kind, one, render

TLS = next(path for path in OVERLAYS if path.name == "tls")
PLAIN = next(path for path in OVERLAYS if path.name == "cpu-dev")  # the base's probes, over gRPC
MOUNT = "/etc/modelyard/tls"


def certificate(docs: tuple[Doc, ...], name: str) -> Doc:
    return one(docs, "Certificate", name)


def mounted_secret(deployment: Doc) -> str:
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
    assert mounts["tls"] == MOUNT
    return str(volumes["tls"]["secret"]["secretName"])


def test_cert_manager_issues_a_ca_and_both_certificates_from_it() -> None:
    docs = render(TLS)
    issuers = {doc["metadata"]["name"]: doc["spec"] for doc in of_kind(docs, "Issuer")}
    assert issuers["modelyard-selfsigned"] == {"selfSigned": {}}
    ca = certificate(docs, "modelyard-ca")["spec"]
    assert ca["isCA"] is True
    assert ca["issuerRef"]["name"] == "modelyard-selfsigned"
    assert issuers["modelyard-ca"] == {"ca": {"secretName": ca["secretName"]}}
    for name in ("modelyard-router-tls", "modelyard-worker-tls"):
        spec = certificate(docs, name)["spec"]
        assert spec["issuerRef"]["name"] == "modelyard-ca"
        assert {"server auth", "client auth"} <= set(spec["usages"]), "each side is server and client"
        assert spec["renewBefore"]


def test_each_side_mounts_its_certificate_and_checks_the_others_name() -> None:
    docs = render(TLS)
    router, worker = one(docs, "Deployment", "modelyard-router"), one(docs, "Deployment", "modelyard-worker")
    router_cert = certificate(docs, "modelyard-router-tls")["spec"]
    worker_cert = certificate(docs, "modelyard-worker-tls")["spec"]
    assert mounted_secret(router) == router_cert["secretName"]
    assert mounted_secret(worker) == worker_cert["secretName"]

    router_args = router_parser().parse_args(container(router)["args"])
    assert (router_args.tls_cert, router_args.tls_key) == (f"{MOUNT}/tls.crt", f"{MOUNT}/tls.key")
    volume = next(v for v in router["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    config = yaml.safe_load(one(docs, "ConfigMap", volume["configMap"]["name"])["data"]["router.yaml"])
    assert config["workers"]["tls_ca"] == f"{MOUNT}/ca.crt"
    assert config["workers"]["tls_server_name"] in worker_cert["dnsNames"]

    worker_args = worker_parser().parse_args(container(worker)["args"])
    assert (worker_args.tls_cert, worker_args.tls_key, worker_args.tls_ca) == (
        f"{MOUNT}/tls.crt",
        f"{MOUNT}/tls.key",
        f"{MOUNT}/ca.crt",
    )
    assert worker_args.tls_server_name in router_cert["dnsNames"]
    env = {e["name"]: e.get("value", "") for e in container(worker)["env"]}
    assert env["MODELYARD_ROUTER"].rsplit(":", 1)[0] == worker_args.tls_server_name


def test_every_probe_checks_health_over_tls() -> None:
    docs = render(TLS)
    for name, cert, port in (
        ("modelyard-router", "modelyard-router-tls", 50051),
        ("modelyard-worker", "modelyard-worker-tls", 50061),
    ):
        deployment = one(docs, "Deployment", name)
        names = certificate(docs, cert)["spec"]["dnsNames"]
        probes = {k: v for k, v in container(deployment).items() if k.endswith("Probe")}
        plain = container(one(render(PLAIN), "Deployment", name))
        assert set(probes) == {k for k in plain if k.endswith("Probe")}
        assert probes, name
        for kind, probe in probes.items():
            assert "grpc" not in probe, f"{name} {kind}: kubelet's gRPC probe cannot speak TLS"
            command = probe["exec"]["command"]
            assert command[:3] == ["python", "-m", "core.health_probe"], f"{name} {kind}"
            args = probe_parser().parse_args(command[3:])
            assert args.address == f"127.0.0.1:{port}"
            assert args.tls_ca == f"{MOUNT}/ca.crt"
            assert args.server_name in names
            # The same health service the other overlays' gRPC probes ask for (the router's `liveness`).
            assert args.service == plain[kind]["grpc"].get("service", ""), f"{name} {kind}"
            assert probe["timeoutSeconds"] >= 3, "a Python process needs more than kubelet's default second"
        if name == "modelyard-worker":  # the worker takes mutual TLS only: the probe shows the pod's own cert
            args = probe_parser().parse_args(probes["readinessProbe"]["exec"]["command"][3:])
            assert (args.tls_cert, args.tls_key) == (f"{MOUNT}/tls.crt", f"{MOUNT}/tls.key")


def test_the_overlay_is_listed_in_the_deploy_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "deploy" / "README.md").read_text()
    assert "overlays/tls" in readme
