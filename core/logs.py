"""Logging for the router and the worker: plain text or one JSON object per line, with the request's fields.

The request being served (request id, tenant, backend, model) lives in a context variable, bound as the request
is understood (`bind`); every record logged while serving it carries those fields, in both formats. With
`--log-format json`, stdout and stderr carry JSON lines only: the process's own announcements (`announce`)
become JSON too, libraries' records (vLLM's included) go through the same handler, and progress bars that
would draw on stderr are switched off.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
REQUEST_FIELDS = ("request_id", "tenant", "backend", "model")

_NONE: Mapping[str, str] = MappingProxyType({})
_request: ContextVar[Mapping[str, str]] = ContextVar("modelyard_request", default=_NONE)
# Attributes every LogRecord has: anything else on a record came from `extra=` and is worth printing.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_format: LogFormat = "text"
_HANDLER_NAME = "modelyard"
QUIET_LOGGERS = ("httpx", "httpcore")


def bind(**fields: str) -> None:
    """Add fields (empty values ignored) to the request being served in this context (task)."""
    _request.set({**_request.get(), **{key: value for key, value in fields.items() if value}})


def request_fields() -> Mapping[str, str]:
    return _request.get()


class RequestFields(logging.Filter):
    """Copies the bound request fields onto each record (fields passed with `extra=` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _request.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


# Control characters (newlines above all) and Unicode line breaks, written as escapes in text logs: a value a
# caller chose (a model name, a prompt quoted in an error) cannot start a forged line of its own.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, 0x85)} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def escape_controls(text: str) -> str:
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging's name
        """The line before any traceback (which keeps its own newlines), its message escaped."""
        escaped = logging.makeLogRecord(record.__dict__)
        escaped.message = escape_controls(record.message)
        return super().formatMessage(escaped)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(
            f"{key}={escape_controls(str(getattr(record, key)))}"
            for key in REQUEST_FIELDS
            if getattr(record, key, "")
        )
        if not fields:
            return text
        # After the first line, so a traceback below stays below.
        first, sep, rest = text.partition("\n")
        return f"{first} [{fields}]{sep}{rest}"


def configure(level: str = "INFO", log_format: LogFormat = "text") -> None:
    """Route every record (the root logger's) to stderr in `log_format`. Call before vLLM is imported."""
    global _format
    _format = log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestFields())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace our own handler if configured before; leave others alone (a test's log capture, say).
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    # httpx (under the openai and anthropic SDKs) logs every request's full URL at INFO, userinfo included.
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    if log_format == "json":
        # Libraries that would write to stderr on their own: vLLM logs through the root logger instead of its
        # own handler, and no progress bars.
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        _wrap_stderr_lines()


def _wrap_stderr_lines() -> None:
    """Make every line that reaches file descriptor 2 a JSON line: ours pass through, the rest are wrapped.

    C and C++ code (gRPC's core, PyTorch, vLLM's kernels) and child processes write to the descriptor itself,
    past Python's logging; a pipe in its place, read by a thread, catches them too.
    """
    original = os.dup(2)
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, original), name="stderr-json", daemon=True)
    pump.start()

    def restore() -> None:  # at exit: our last lines through the pump, then stderr as it was
        sys.stderr.flush()
        os.dup2(original, 2)
        pump.join(timeout=1.0)

    atexit.register(restore)


def _pump(read_end: int, sink_fd: int) -> None:
    with open(read_end, "rb") as source, open(sink_fd, "wb", buffering=0, closefd=False) as sink:
        for raw in source:
            line = raw.decode(errors="replace").rstrip("\n")
            if not line.strip():
                continue
            if not _is_json_object(line):
                wrapped = {"ts": _timestamp(time.time()), "level": "INFO", "logger": "stderr", "msg": line}
                line = json.dumps(wrapped, ensure_ascii=False)
            sink.write(line.encode() + b"\n")


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def announce(text: str, stream: TextIO | None = None, level: str = "INFO", **fields: Any) -> None:
    """A line for people and launchers (ready, errors): as is in text format, a JSON object in json format."""
    stream = stream or sys.stdout
    if _format == "json":
        line = {"ts": _timestamp(time.time()), "level": level, "msg": text, **fields}
        text = json.dumps(line, default=str, ensure_ascii=False)
    print(text, file=stream, flush=True)


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"
