"""A service a test needs (PostgreSQL, Redis) that is not installed: skipped on a developer's machine, a failure
in CI (CI=true), where the install step puts it there and a broken install must not pass as a quiet skip."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, install: str) -> NoReturn:
    """Skip the test, or fail it under CI=true, saying what is missing and how to install it."""
    message = f"{what} not installed: {install}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: the CI install step must provide it)", pytrace=False)
    pytest.skip(message)
