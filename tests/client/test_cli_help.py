"""Every command says what it does and every option has help text, all the way down the command tree."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from modelyard_client.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += walk(child, f"{path} {name}")
    return found


def test_every_command_has_a_description_and_every_option_help() -> None:
    missing = []
    for path, parser in walk(build_parser(), "modelyard"):
        if parser.add_help and not parser.description:
            missing.append(f"{path}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: no help")
    assert not missing, "\n".join(missing)


# Run in a fresh interpreter where the engines' packages cannot be imported, as on a client-only install.
_WITHOUT_ENGINES = """
import importlib.abc, sys
ENGINES = {"vllm", "torch", "transformers", "faster_whisper", "ctranslate2", "numpy", "av", "gguf", "accelerate"}
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ENGINES:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
from modelyard_client.cli import main
sys.exit(main(["worker", "--help"]))
"""


def test_worker_help_needs_no_engines() -> None:
    path = os.pathsep.join(str(p) for p in (REPO, REPO / "proto", REPO / "clients"))
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_ENGINES],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    assert "--chat-model" in done.stdout
    assert "Traceback" not in done.stderr
