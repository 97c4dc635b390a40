"""Log lines: JSON objects carrying the request's fields, or text with them appended."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from core import logs


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("modelyard.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


async def test_fields_bound_in_one_request_stay_in_it() -> None:
    async def request(request_id: str) -> logging.LogRecord:
        logs.bind(request_id=request_id, tenant="acme")
        await asyncio.sleep(0)  # the other request runs meanwhile
        logs.bind(backend="w1", model="tiny")
        made = record("hello")
        logs.RequestFields().filter(made)
        return made

    first, second = await asyncio.gather(request("r1"), request("r2"))
    assert (first.request_id, second.request_id) == ("r1", "r2")  # type: ignore[attr-defined]
    line = json.loads(logs.JsonFormatter().format(first))
    assert {key: line[key] for key in logs.REQUEST_FIELDS} == {
        "request_id": "r1",
        "tenant": "acme",
        "backend": "w1",
        "model": "tiny",
    }
    assert (line["level"], line["logger"], line["msg"]) == ("INFO", "modelyard.test", "hello")
    assert line["ts"].endswith("Z")
    assert logs.request_fields() == {}  # this test's own context saw none of it


def test_json_lines_carry_extras_and_tracebacks_on_one_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("it",), sys.exc_info())
    made.latency_ms = 12.5
    text = logs.JsonFormatter().format(made)
    assert "\n" not in text
    line = json.loads(text)
    assert line["msg"] == "failed: it"
    assert line["latency_ms"] == 12.5
    assert "ValueError: boom" in line["exc"]


def test_text_lines_name_the_request() -> None:
    made = record("served", request_id="r9", model="tiny")
    assert logs.TextFormatter().format(made).endswith("served [request_id=r9 model=tiny]")
