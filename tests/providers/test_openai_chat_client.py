"""The thin streamed-chat client's proxy choice: the environment's, looked up once, as the SDK's httpx does."""

from __future__ import annotations

import pytest

from router.backends.openai_chat_client import _proxy_for


def test_the_environments_proxy_applies_unless_no_proxy_exempts_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _proxy_for("https://api.openai.com/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.corp.example")
    assert _proxy_for("https://api.openai.com/v1/chat/completions") == "http://proxy.internal:3128"
    assert _proxy_for("https://llm.corp.example/v1/chat/completions") is None
    assert _proxy_for("http://127.0.0.1:8000/v1/chat/completions") is None  # and no HTTP_PROXY is set
