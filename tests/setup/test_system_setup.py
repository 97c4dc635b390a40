"""The set-up a newcomer runs: `make system-deps`, `make install` without Node, and `make test` naming what is missing.

Each runs the real script or Makefile recipe in a subprocess, with PATH narrowed to stand-ins for apt-get,
dpkg-query and pip (which record what they were asked and change nothing on this machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def stand_in(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def run(
    command: list[str], path: Path, *, cwd: Path = REPO_ROOT, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env={"PATH": str(path), "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_system_deps_installs_every_missing_package_with_apt(tmp_path: Path) -> None:
    """A bare machine (no packages, no kubectl, no node) gets everything .ci/run needs, in one apt-get install."""
    log = tmp_path / "apt.log"
    stand_in(tmp_path, "dpkg-query", "exit 1")  # nothing installed
    stand_in(tmp_path, "apt-get", f'echo "apt-get $*" >> {log}')
    stand_in(tmp_path, "sudo", 'shift; exec "$@"')  # `sudo -n CMD`, for a run as a user
    done = run([shutil.which("bash") or "/bin/bash", ".ci/system-deps"], tmp_path)
    assert done.returncode == 0, done.stderr
    installed = log.read_text().splitlines()[-1].split()
    for package in (
        "make",
        "espeak-ng",
        "sox",
        "redis-server",
        "postgresql",
        "kubernetes-client",
        "nodejs",
        "npm",
    ):
        assert package in installed, (package, installed)


def test_system_deps_keeps_a_kubectl_and_node_already_there(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    stand_in(tmp_path, "dpkg-query", "printf installed")
    stand_in(tmp_path, "apt-get", f'echo "apt-get $*" >> {log}')
    for tool in ("kubectl", "node", "npm"):
        stand_in(tmp_path, tool, "exit 0")
    done = run([shutil.which("bash") or "/bin/bash", ".ci/system-deps"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "all present" in done.stdout
    assert not log.exists()


def test_ci_runs_the_same_script() -> None:
    assert "bash .ci/system-deps" in (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash .ci/system-deps" in (REPO_ROOT / "Makefile").read_text()


def test_make_install_without_npm_installs_the_product_and_says_what_it_skipped(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    pip_log = tmp_path / "pip.log"
    stand_in(venv / "bin", "python", "exit 0")
    stand_in(venv / "bin", "pip", f'echo "pip $*" >> {pip_log}')
    tools = tmp_path / "bin"
    tools.mkdir()
    os.symlink(make, tools / "make")
    done = run(["make", "--no-print-directory", "install", f"VENV={venv}"], tools)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pip install -e .[cpu,dev]" in pip_log.read_text()
    assert "skipped tests/node's npm packages and the buf CLI (no npm on PATH)" in done.stdout
    assert "make system-deps" in done.stdout
    assert f". {venv}/bin/activate" in done.stdout


def test_make_test_names_a_missing_package_and_fails_under_ci(tmp_path: Path) -> None:
    """pytest with no system tools on PATH: the header names them; under CI the run stops, naming them."""
    (tmp_path / "test_nothing.py").write_text("def test_nothing() -> None:\n    pass\n")
    (tmp_path / "conftest.py").write_text((REPO_ROOT / "tests" / "conftest.py").read_text())
    python_dir = tmp_path / "python"
    python_dir.mkdir()
    os.symlink(sys.executable, python_dir / "python")
    command = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    env = {"PYTHONPATH": os.pathsep.join(map(str, (REPO_ROOT, REPO_ROOT / "proto", REPO_ROOT / "clients")))}

    local = run(command, python_dir, cwd=tmp_path, **env)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "system packages missing" in local.stdout
    for package in (
        "espeak-ng",
        "redis-server",
        "kubernetes-client",
        "nodejs",
    ):  # PostgreSQL: also found off PATH
        assert f"package {package}" in local.stdout

    ci = run(command, python_dir, cwd=tmp_path, CI="true", **env)
    assert ci.returncode == 3, ci.stdout + ci.stderr
    assert "missing: espeak-ng (package espeak-ng" in ci.stdout + ci.stderr
    assert "make system-deps" in ci.stdout + ci.stderr
