"""Real PostgreSQL and Redis servers for tests, started from the system's packages in a temp dir.

Each listens on a free port on 127.0.0.1 and is stopped when its context ends. PostgreSQL refuses to
run as root, so as root its data directory belongs to the `postgres` user and its tools run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.polling import wait_until_sync


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    return Path(versions[-1]) if versions else None


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _pg(command: list[str]) -> None:
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr.strip()}")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL cluster with a `modelyard` database (trust auth, loopback only)."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    with tempfile.TemporaryDirectory(prefix="modelyard-pg-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(tmp, "postgres")
            shutil.chown(data, "postgres")
        _pg([str(bindir / "initdb"), "-D", str(data), "-U", "modelyard", "--auth=trust", "-E", "UTF8"])
        port = free_port()
        options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = Path(tmp) / "server.log"
        ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
        _pg([*ctl, "-w", "-t", "30", "start"])
        try:
            _pg(
                [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "modelyard", "modelyard"]
            )
            yield f"postgresql://modelyard@127.0.0.1:{port}/modelyard"
        finally:
            subprocess.run(_as_postgres([*ctl, "-m", "fast", "-w", "stop"]), capture_output=True, check=False)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL of a fresh redis-server with no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="modelyard-redis-") as tmp:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    wait_until_sync(listening, timeout, f"nothing listening on 127.0.0.1:{port} after {timeout} s")
