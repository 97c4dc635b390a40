"""The kind -> backend registry and the presets behind it."""

from __future__ import annotations

import dataclasses

import pytest
from modelyard.v1 import inference_pb2 as pb

from router.backends.anthropic_backend import AnthropicBackend
from router.backends.cloud import CloudBackend
from router.backends.factory import FACTORIES, KINDS, create_backend, preset
from router.backends.openai_backend import OpenAIBackend
from router.backends.presets import PRESETS
from router.config.settings import ProviderConfig

KEY = "sk-factory-SECRET-42"


@pytest.mark.parametrize(
    ("kind", "cls", "base_url", "max_tokens_param", "chat_model"),
    [
        ("openai", OpenAIBackend, "https://api.openai.com/v1/", "max_completion_tokens", "gpt-4o-mini"),
        ("deepseek", OpenAIBackend, "https://api.deepseek.com/v1/", "max_tokens", "deepseek-chat"),
        (
            "gemini",
            OpenAIBackend,
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "max_tokens",
            "gemini-2.5-flash",
        ),
        ("anthropic", AnthropicBackend, "https://api.anthropic.com", None, "claude-haiku-4-5"),
    ],
)
async def test_each_kind_gets_its_backend_and_preset(
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    cls: type[CloudBackend],
    base_url: str,
    max_tokens_param: str | None,
    chat_model: str,
) -> None:
    # The SDKs' own base-URL variables would move the default endpoints.
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    backend = create_backend(ProviderConfig(name=f"my-{kind}", kind=kind, api_key=KEY, priority=7))
    try:
        assert type(backend) is cls
        assert (backend.id, backend.kind, backend.priority, backend.enabled) == (f"my-{kind}", kind, 7, True)
        assert backend.address.rstrip("/") == base_url.rstrip("/")
        assert backend.serves(chat_model, pb.CAPABILITY_CHAT)
        assert getattr(backend, "max_tokens_param", None) == max_tokens_param
        assert KEY not in repr(backend)
        assert KEY not in backend.address
    finally:
        await backend.close()


async def test_openai_compatible_needs_base_url_and_keeps_configured_models() -> None:
    with pytest.raises(ValueError, match="needs base_url"):
        create_backend(ProviderConfig(name="local", kind="openai_compatible", chat_models=["llama"]))
    backend = create_backend(
        ProviderConfig(
            name="local",
            kind="openai_compatible",
            base_url="http://user:pw@10.0.0.5:8000/v1",
            chat_models=["llama", "qwen"],
            embed_models=["qwen"],
            vision_models=["qwen"],
        )
    )
    try:
        assert isinstance(backend, OpenAIBackend)
        assert backend.max_tokens_param == "max_tokens"
        assert backend.address == "http://10.0.0.5:8000/v1/"  # no credentials in what status shows
        specs = {m.id: m for m in backend.models}
        assert specs["llama"].capabilities == frozenset({pb.CAPABILITY_CHAT})
        assert specs["qwen"].capabilities == frozenset({pb.CAPABILITY_CHAT, pb.CAPABILITY_EMBED})
        assert (specs["llama"].vision, specs["qwen"].vision) == (False, True)
    finally:
        await backend.close()


async def test_configured_models_replace_the_presets() -> None:
    backend = create_backend(ProviderConfig(name="oa", kind="openai", api_key=KEY, chat_models=["gpt-4o"]))
    try:
        assert [m.id for m in backend.models] == ["gpt-4o"]
        assert not backend.serves("text-embedding-3-small", pb.CAPABILITY_EMBED)
    finally:
        await backend.close()


async def test_preset_models_carry_capabilities_and_vision() -> None:
    backend = create_backend(ProviderConfig(name="oa", kind="openai", api_key=KEY))
    try:
        specs = {m.id: m for m in backend.models}
        assert set(specs) == {
            "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "text-embedding-3-small", "text-embedding-3-large",
            "whisper-1", "gpt-4o-mini-transcribe",
        }  # fmt: skip
        assert specs["whisper-1"].capabilities == frozenset({pb.CAPABILITY_TRANSCRIBE})
        assert specs["gpt-4o"].vision
        assert not specs["text-embedding-3-small"].vision
    finally:
        await backend.close()


async def test_runtime_switches_and_capacity() -> None:
    backend = create_backend(
        ProviderConfig(name="a", kind="anthropic", api_key=KEY, enabled=False, priority=3, max_concurrency=2)
    )
    try:
        assert (backend.enabled, backend.priority) == (False, 3)
        backend.enabled, backend.priority = True, 1
        assert (backend.enabled, backend.priority) == (True, 1)
        assert backend.available
        backend.in_flight = 2
        assert not backend.available
    finally:
        await backend.close()


def test_unknown_kind_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown provider kind 'bedrock'") as error:
        create_backend(ProviderConfig(name="b", kind="bedrock"))
    for kind in KINDS:
        assert kind in str(error.value)
    with pytest.raises(ValueError, match="known kinds: openai, openai_compatible"):
        preset("bedrock")


def test_registry_and_presets_agree() -> None:
    assert set(FACTORIES) == set(PRESETS) == set(KINDS)
    assert KINDS == ("openai", "openai_compatible", "deepseek", "gemini", "anthropic")
    keys = {kind: preset(kind).api_key_env for kind in KINDS}
    assert keys == {
        "openai": "OPENAI_API_KEY",
        "openai_compatible": "",
        "deepseek": "DEEPSEEK_API_KEY",
        "gemini": "GEMINI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
    }
    assert preset("gemini").embed_models == ("text-embedding-004",)
    assert preset("anthropic").embed_models == preset("anthropic").transcribe_models == ()


def test_presets_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset("openai").base_url = "http://elsewhere"  # type: ignore[misc]
