"""The README's Configuration section: its example passes check-config as written, every setting is documented,
and a provider without its key is named by check-config and by status."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from router.config.loader import load_config
from router.config.settings import ProviderConfig, RouterConfig
from router.routing.backend_status import backend_status
from router.server import RouterServer

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIGURATION = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
# What the example keeps in the environment: the providers' keys, and the worker token a non-loopback listen needs.
KEYS = {
    "OPENAI_API_KEY": "sk-test-openai",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "MODELYARD_WORKER_TOKEN": "a-worker-token-of-some-length",
}


def check_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("MODELYARD_")
    }
    return subprocess.run(
        [sys.executable, "-m", "modelyard_client", "router", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, "PYTHONPATH": os.pathsep.join(str(REPO / d) for d in ("", "proto", "clients")), **env},
    )


def example(tmp_path: Path) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(re.findall(r"```yaml\n(.*?)```", CONFIGURATION, flags=re.DOTALL)[0])
    return path


def test_the_configuration_example_passes_check_config_as_written(tmp_path: Path) -> None:
    done = check_config(example(tmp_path), KEYS)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_a_provider_without_its_key_fails_check_config_naming_the_variable(tmp_path: Path) -> None:
    done = check_config(example(tmp_path), {**KEYS, "OPENAI_API_KEY": ""})
    assert done.returncode == 1
    assert (
        done.stderr.splitlines()[-1]
        == "modelyard router check-config: providers.openai: OPENAI_API_KEY is not set"
    )


def test_the_error_example_names_a_real_setting(tmp_path: Path) -> None:
    bad = re.search(r"a bad value \(`([\w.]+): (\w+)`\)", CONFIGURATION)
    assert bad is not None
    section, _, key = bad.group(1).rpartition(".")
    path = tmp_path / "router.yaml"
    path.write_text(f"{section}: {{{key}: {bad.group(2)}}}\n" if section else f"{key}: {bad.group(2)}\n")
    done = check_config(path, {})
    assert done.returncode == 1
    assert bad.group(1) in done.stderr


def settings(cls: type, prefix: str = "") -> list[str]:
    """Every setting's dotted path, sections (dataclass-typed fields) walked into."""
    hints = typing.get_type_hints(cls)
    found = []
    for field in dataclasses.fields(cls):
        if field.name in ("name", "api_key", "token"):  # a provider's name is its key; secrets stay in env
            continue
        found.append(prefix + field.name)
        inner = [hints[field.name], *typing.get_args(hints[field.name])]
        inner += [arg for hint in inner for arg in typing.get_args(hint)]
        for hint in inner:
            if isinstance(hint, type) and dataclasses.is_dataclass(hint) and hint is not ProviderConfig:
                found += settings(hint, f"{prefix}{field.name}.")
    return found


@pytest.mark.parametrize("setting", settings(RouterConfig) + settings(ProviderConfig, "providers.<name>."))
def test_every_setting_is_documented(setting: str) -> None:
    leaf = setting.rpartition(".")[2]
    assert re.search(rf"\b{re.escape(leaf)}\b", README), f"{setting} is not in the README"


async def test_a_provider_without_its_key_says_so_in_status() -> None:
    config = RouterConfig(listen="127.0.0.1:0", usage_db="off")
    config.providers = load_config(env={}).providers or [
        ProviderConfig(name="openai", kind="openai", api_key_env="OPENAI_API_KEY")
    ]
    server = RouterServer(config)
    await server.start()
    try:
        await server.state.health.check_all()
        (backend,) = list(server.registry)
        status = backend_status(backend, server.state)
        assert not status.healthy
        assert status.last_error == "OPENAI_API_KEY is not set"
    finally:
        await server.stop(0)
