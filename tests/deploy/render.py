"""Rendering the Kustomize overlays with `kubectl kustomize`, and finding things in what comes out."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.support.system_tools import require

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = sorted(path for path in (K8S / "overlays").iterdir() if (path / "kustomization.yaml").is_file())

Doc = dict[str, Any]


def kubectl() -> str:
    """kubectl's path; skips the test without it (fails it under CI, where .ci/run installs it)."""
    require("kubectl")
    return str(shutil.which("kubectl"))


@cache
def render(directory: Path) -> tuple[Doc, ...]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed: {done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def container(deployment: Doc) -> Doc:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def flag(args: list[str], name: str) -> str | None:
    """The value after `name` in a container's args, or None."""
    return args[args.index(name) + 1] if name in args else None
