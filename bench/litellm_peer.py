"""The peer: LiteLLM's proxy, in its own virtual environment (bench/.venv-litellm), on 127.0.0.1.

Installed on first use with `pip install 'litellm[proxy]'`; any failure is reported, never a figure.
It proxies the same local OpenAI-format server the router uses, as `openai/<model>`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-litellm"
INSTALL_TIMEOUT_S = 1200.0
START_TIMEOUT_S = 180.0
_ENV = {
    # Stay offline and quiet: no cost map download, no telemetry, errors only.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "NO_PROXY": "127.0.0.1,localhost",
}


@dataclass
class Install:
    ok: bool
    version: str  # the version, or why there is none


def ensure_installed() -> Install:
    """Create the venv and install LiteLLM's proxy unless it is there already."""
    python = VENV / "bin" / "python"
    if not (VENV / "bin" / "litellm").exists():
        try:
            if not python.exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300
                )
            print("bench: installing litellm[proxy] into bench/.venv-litellm (first run only)", flush=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "litellm[proxy]"],
                check=True,
                capture_output=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except subprocess.CalledProcessError as e:
            tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return Install(False, f"install failed: {tail[0][:160]}")
        except (OSError, subprocess.TimeoutExpired) as e:
            return Install(False, f"install failed: {type(e).__name__}: {e}"[:200])
    try:
        found = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return Install(False, f"installed but not importable: {type(e).__name__}")
    return Install(True, found.stdout.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiteLLMProxy:
    """`litellm --config` with one model pointing at `upstream` (an OpenAI base URL ending in /v1)."""

    def __init__(self, upstream: str, model: str) -> None:
        self.port = _free_port()
        self.key = "sk-" + secrets.token_hex(24)  # the proxy refuses to start without a strong one
        self._dir = tempfile.TemporaryDirectory(prefix="modelyard-litellm-")
        self.log = Path(self._dir.name) / "litellm.log"
        config = Path(self._dir.name) / "config.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {model}\n"
            "    litellm_params:\n"
            f"      model: openai/{model}\n"
            f"      api_base: {upstream}\n"
            "      api_key: sk-bench\n"
            "general_settings:\n"
            f"  master_key: {self.key}\n"
            "litellm_settings:\n"
            "  telemetry: false\n"
            "  drop_params: true\n",
            encoding="utf-8",
        )
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        command = [str(VENV / "bin" / "litellm"), "--config", str(self._config), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--num_workers", "1"]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **_ENV},
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"litellm exited with {self._process.returncode}: {self.log_tail()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/liveliness", timeout=2) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"litellm not ready within {START_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-3:])[:300]
        except OSError:
            return "no log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._dir.cleanup()
