"""The shared HTTP-status table and its helpers."""

from __future__ import annotations

import email.utils

import grpc
import pytest

from router.backends.cloud_errors import http_status_error, redact, retry_after_seconds

SECRET = "sk-very-SECRET"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer one wins
        ({"retry-after": email.utils.formatdate(1_000_060, usegmt=True)}, 60.0),
        ({"retry-after": email.utils.formatdate(999_000, usegmt=True)}, 0.0),  # in the past: now
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers, now=1_000_000) == expected


@pytest.mark.parametrize(
    ("status", "retryable", "code"),
    [
        (400, False, grpc.StatusCode.INVALID_ARGUMENT),
        (401, True, grpc.StatusCode.UNAVAILABLE),
        (402, True, grpc.StatusCode.UNAVAILABLE),
        (403, True, grpc.StatusCode.UNAVAILABLE),
        (404, False, grpc.StatusCode.INVALID_ARGUMENT),
        (408, True, grpc.StatusCode.DEADLINE_EXCEEDED),
        (409, True, grpc.StatusCode.UNAVAILABLE),
        (413, False, grpc.StatusCode.INVALID_ARGUMENT),
        (422, False, grpc.StatusCode.INVALID_ARGUMENT),
        (429, True, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (500, True, grpc.StatusCode.UNAVAILABLE),
        (529, True, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_status_table(status: int, retryable: bool, code: grpc.StatusCode) -> None:
    error = http_status_error("p", status, f"details with {SECRET}", secret=SECRET)
    assert (error.retryable, error.status) == (retryable, code)
    assert SECRET not in error.message
    assert error.message.startswith("provider p")


def test_unknown_model_404_is_not_found() -> None:
    error = http_status_error("p", 404, "model x", secret=SECRET, unknown_model=True)
    assert (error.retryable, error.status) == (False, grpc.StatusCode.NOT_FOUND)


def test_long_details_are_clipped_and_empty_secrets_change_nothing() -> None:
    error = http_status_error("p", 400, "x" * 5000, secret="")
    assert len(error.message) < 400
    assert redact("abc", "") == "abc"
