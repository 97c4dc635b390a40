"""What each provider kind starts from: where it lives, which env var holds its key, what it serves.

Data only; router.backends.factory pairs each kind with the class that speaks its API, and the config
loader fills what a provider's settings leave out from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Preset:
    base_url: str | None  # None: the SDK's default (which honours OPENAI_BASE_URL / ANTHROPIC_BASE_URL)
    api_key_env: str  # "" for kinds with no standard key variable
    chat_models: tuple[str, ...] = ()
    embed_models: tuple[str, ...] = ()
    transcribe_models: tuple[str, ...] = ()
    vision_models: tuple[str, ...] = ()
    requires_base_url: bool = False
    # OpenAI-style APIs only: the name the API gives the completion length limit.
    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_tokens"


_OPENAI_CHAT = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
_ANTHROPIC_CHAT = ("claude-haiku-4-5", "claude-sonnet-4-6")
_GEMINI_CHAT = ("gemini-2.0-flash", "gemini-2.5-flash")

PRESETS: dict[str, Preset] = {
    "openai": Preset(
        base_url=None,
        api_key_env="OPENAI_API_KEY",
        chat_models=_OPENAI_CHAT,
        embed_models=("text-embedding-3-small", "text-embedding-3-large"),
        transcribe_models=("whisper-1", "gpt-4o-mini-transcribe"),
        vision_models=_OPENAI_CHAT,
        max_tokens_param="max_completion_tokens",
    ),
    # Any server speaking OpenAI's API (vLLM, Ollama, LM Studio...): its models come from config.
    "openai_compatible": Preset(base_url=None, api_key_env="", requires_base_url=True),
    "deepseek": Preset(
        base_url="https://api.deepseek.com/v1",
        api_key_env="DEEPSEEK_API_KEY",
        chat_models=("deepseek-chat", "deepseek-reasoner"),
    ),
    "gemini": Preset(
        base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
        api_key_env="GEMINI_API_KEY",
        chat_models=_GEMINI_CHAT,
        embed_models=("text-embedding-004",),
        vision_models=_GEMINI_CHAT,
    ),
    "anthropic": Preset(
        base_url=None,
        api_key_env="ANTHROPIC_API_KEY",
        chat_models=_ANTHROPIC_CHAT,
        vision_models=_ANTHROPIC_CHAT,
    ),
}
