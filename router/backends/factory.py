"""Provider kind -> the backend that speaks its API: the one registry, filled here and nowhere else.

Adding a provider is a preset in router.backends.presets and a line in FACTORIES; nothing else in the
router names a kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from router.backends.cloud import CloudBackend
from router.backends.presets import PRESETS, Preset
from router.config.settings import ProviderConfig

BackendFactory = Callable[[ProviderConfig], CloudBackend]


# The SDKs are imported when a provider of their kind is made, not with the router: the anthropic and openai
# packages hold about 55 MiB of memory between them, which a router in front of GPU workers only never uses.


def _openai_api(config: ProviderConfig) -> CloudBackend:
    from router.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(config, max_tokens_param=PRESETS[config.kind].max_tokens_param)


def _anthropic_api(config: ProviderConfig) -> CloudBackend:
    from router.backends.anthropic_backend import AnthropicBackend

    return AnthropicBackend(config)


FACTORIES: dict[str, BackendFactory] = {
    "openai": _openai_api,
    "openai_compatible": _openai_api,
    "deepseek": _openai_api,
    "gemini": _openai_api,
    "anthropic": _anthropic_api,
}

KINDS: tuple[str, ...] = tuple(FACTORIES)


def preset(kind: str) -> Preset:
    found = PRESETS.get(kind)
    if found is None or kind not in FACTORIES:
        raise ValueError(_unknown(kind))
    return found


def create_backend(config: ProviderConfig) -> CloudBackend:
    """The backend for `config`, with its kind's preset filling a missing base_url or model list."""
    factory = FACTORIES.get(config.kind)
    if factory is None:
        raise ValueError(f"provider {config.name}: {_unknown(config.kind)}")
    return factory(with_preset_defaults(config))


def with_preset_defaults(config: ProviderConfig) -> ProviderConfig:
    """A copy of `config` with its preset's base_url when it has none, and the preset's models when
    it lists none at all (a provider that serves nothing is never what was meant)."""
    defaults = preset(config.kind)
    base_url = config.base_url or defaults.base_url
    if base_url is None and defaults.requires_base_url:
        raise ValueError(f"provider {config.name} (kind {config.kind}) needs base_url")
    listed = config.chat_models or config.embed_models or config.transcribe_models
    if listed:
        return dataclasses.replace(config, base_url=base_url)
    return dataclasses.replace(
        config,
        base_url=base_url,
        chat_models=list(defaults.chat_models),
        embed_models=list(defaults.embed_models),
        transcribe_models=list(defaults.transcribe_models),
        vision_models=config.vision_models or list(defaults.vision_models),
    )


def _unknown(kind: str) -> str:
    return f"unknown provider kind {kind!r}; known kinds: {', '.join(KINDS)}"
