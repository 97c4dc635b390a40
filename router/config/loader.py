"""Configuration from a YAML file, environment variables over it, command-line flags over both.

With no file at all, each cloud provider whose API key is in the environment is enabled with its
preset's default models; the SDKs' own OPENAI_BASE_URL / ANTHROPIC_BASE_URL are honoured because
base_url stays unset unless configured.

    listen: 0.0.0.0:50051
    strategy: composite            # composite | fallback | priority | cost_optimized | latency | least_loaded
    weights: {composite: {success_rate: 3, latency: 2, load: 2, cost: 1, priority: 1, prefix: 3}}
    providers:
      openai: {kind: openai, priority: 10}              # key from OPENAI_API_KEY
      anthropic: {kind: anthropic, priority: 20}
      local-llm: {kind: openai_compatible, base_url: "http://10.0.0.5:8000/v1", chat_models: [llama-3-8b]}
    routes: {fast: [anthropic/claude-haiku-4-5, openai/gpt-4o-mini], smart: [openai/gpt-4o]}
    tasks: {code: smart}
    prices: {llama-3-8b: {input_per_m: 0.0, output_per_m: 0.0}}
    keys: [{tenant: acme, key_sha256: "sha256$..."}]   # and usage_db, budgets, cache, metrics_listen:
                                                       # see router.config.accounting
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from router.backends.factory import KINDS, preset
from router.config.accounting import accounting_settings
from router.config.settings import PrefixConfig, ProviderConfig, RetryPolicy, RouterConfig


class ConfigError(ValueError):
    pass


_PROVIDER_FIELDS = {f.name for f in dataclasses.fields(ProviderConfig)} - {"name", "api_key"}
_TOP_LEVEL = {f.name for f in dataclasses.fields(RouterConfig)}


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> RouterConfig:
    env = os.environ if env is None else env
    path = path or env.get("MODELYARD_CONFIG")
    raw: dict[str, Any] = {}
    if path:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"config file {path}: {e}") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
    config = _from_mapping(raw, env)
    if "MODELYARD_LISTEN" in env:
        config.listen = env["MODELYARD_LISTEN"]
    if "MODELYARD_STRATEGY" in env:
        config.strategy = env["MODELYARD_STRATEGY"]
    if "MODELYARD_USAGE_DB" in env:  # a postgresql:// URL may hold a password: keep it out of the file
        config.usage_db = env["MODELYARD_USAGE_DB"]
    return config


def _from_mapping(raw: dict[str, Any], env: Mapping[str, str]) -> RouterConfig:
    unknown = set(raw) - _TOP_LEVEL
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(_TOP_LEVEL)}")
    providers_raw = raw.pop("providers", None)
    retry_raw = raw.pop("retry", None) or {}
    prefix_raw = raw.pop("prefix", None) or {}
    try:
        accounting = accounting_settings(raw)  # typed keys, budgets and cache, popped from raw
        config = RouterConfig(
            **raw, **accounting, retry=RetryPolicy(**retry_raw), prefix=PrefixConfig(**prefix_raw)
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config: {e}") from e
    config.providers = _providers(providers_raw, env)
    return config


def _providers(raw: dict[str, Any] | None, env: Mapping[str, str]) -> list[ProviderConfig]:
    if raw is None:
        # No providers section: every provider whose key is set, with its preset's defaults.
        return [_provider(kind, {"kind": kind}, env) for kind in KINDS if _key_env(kind, env)]
    if not isinstance(raw, dict):
        raise ConfigError("providers: expected a mapping of name -> settings")
    return [_provider(name, settings or {}, env) for name, settings in raw.items()]


def _key_env(kind: str, env: Mapping[str, str]) -> str:
    variable = preset(kind).api_key_env
    return env.get(variable, "") if variable else ""


def _provider(name: str, settings: dict[str, Any], env: Mapping[str, str]) -> ProviderConfig:
    settings = dict(settings)
    kind = settings.get("kind", name)
    if kind not in KINDS:
        raise ConfigError(f"providers.{name}.kind: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    key_env = settings.pop("api_key_env", None) or preset(kind).api_key_env
    if "api_key" in settings:
        raise ConfigError(f"providers.{name}.api_key: keep secrets out of the file; use api_key_env")
    unknown = set(settings) - _PROVIDER_FIELDS
    if unknown:
        raise ConfigError(f"providers.{name}: unknown setting(s) {sorted(unknown)}")
    defaults = preset(kind)
    settings["kind"] = kind
    settings.setdefault("base_url", defaults.base_url)
    for field in ("chat_models", "embed_models", "transcribe_models", "vision_models"):
        settings.setdefault(field, list(getattr(defaults, field)))
    return ProviderConfig(name=name, api_key=env.get(key_env, "") if key_env else "", **settings)
