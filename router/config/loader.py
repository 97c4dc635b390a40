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
    limits: {default: {requests_per_minute: 600}}      # and input: caps; see router.config.limits
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from router.backends.factory import KINDS, preset
from router.config.schema import ConfigError, validate
from router.config.security import load_worker_credentials
from router.config.settings import ProviderConfig, RouterConfig

__all__ = ["ENV_SETTINGS", "ConfigError", "load_config"]


_SETTINGS = frozenset(field.name for field in dataclasses.fields(RouterConfig))
# Environment variables over the file, for settings that may differ per pod or hold a secret.
ENV_SETTINGS = {
    "listen": "MODELYARD_LISTEN",
    "http_listen": "MODELYARD_HTTP_LISTEN",
    "strategy": "MODELYARD_STRATEGY",
    "usage_db": "MODELYARD_USAGE_DB",  # a postgresql:// URL may hold a password: keep it out of the file
    "registry_listen": "MODELYARD_REGISTRY_LISTEN",
}


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> RouterConfig:
    """The file (if any) with the environment over it, checked against the settings (router.config.schema);
    ConfigError, one line naming the field and the file, when anything is wrong."""
    env = os.environ if env is None else env
    path = path or env.get("MODELYARD_CONFIG")
    raw: dict[str, Any] = {}
    source = f"config file {path}" if path else "config"
    if path:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{source}: {' '.join(str(e).split())}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a mapping at the top level")
    # An empty setting (`cache:` and nothing under it) means its default; an unknown one is still refused.
    raw = {key: value for key, value in raw.items() if value is not None or key not in _SETTINGS}
    providers_raw = raw.pop("providers", None)
    from_env = {key: variable for key, variable in ENV_SETTINGS.items() if variable in env}
    for key, variable in from_env.items():
        raw[key] = env[variable]
    if from_env:
        source += f" (with ${', $'.join(from_env.values())})"
    config = validate(RouterConfig, raw, source)
    config.workers = load_worker_credentials(config.workers, env, source)
    config.providers = _providers(providers_raw, env, source)
    check_sdk_base_urls(env)
    return config


def _providers(raw: Any, env: Mapping[str, str], source: str) -> list[ProviderConfig]:
    if raw is None:
        # No providers section: every provider whose key is set, with its preset's defaults.
        return [_provider(kind, {"kind": kind}, env, source) for kind in KINDS if _key_env(kind, env)]
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: providers: expected a mapping of name -> settings")
    return [_provider(str(name), settings or {}, env, source) for name, settings in raw.items()]


def missing_keys(config: RouterConfig) -> list[str]:
    """One line per provider whose key variable is unset: it would start, and stay unhealthy."""
    return [
        f"providers.{p.name}: {p.api_key_env} is not set"
        for p in config.providers
        if p.api_key_env and not p.api_key and p.enabled
    ]


def _key_env(kind: str, env: Mapping[str, str]) -> str:
    variable = preset(kind).api_key_env
    return env.get(variable, "") if variable else ""


def _provider(name: str, settings: Any, env: Mapping[str, str], source: str) -> ProviderConfig:
    where = f"providers.{name}"
    if not isinstance(settings, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping")
    settings = dict(settings)
    kind = settings.get("kind", name)
    if kind not in KINDS:
        raise ConfigError(f"{source}: {where}.kind: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    key_env = settings.pop("api_key_env", None) or preset(kind).api_key_env
    for field in ("api_key", "name"):
        if field in settings:
            hint = (
                "keep secrets out of the file; use api_key_env"
                if field == "api_key"
                else "the key is the name"
            )
            raise ConfigError(f"{source}: {where}.{field}: {hint}")
    defaults = preset(kind)
    settings["kind"] = kind
    settings.setdefault("base_url", defaults.base_url)
    for field in ("chat_models", "embed_models", "transcribe_models", "vision_models"):
        settings.setdefault(field, list(getattr(defaults, field)))
    _refuse_userinfo(settings.get("base_url"), f"{source}: {where}.base_url")
    api_key = env.get(key_env, "") if key_env else ""
    return validate(
        ProviderConfig,
        {**settings, "name": name, "api_key": api_key, "api_key_env": key_env or ""},
        source,
        where,
    )


# The SDKs' own variables, read when base_url is unset.
_SDK_BASE_URLS = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")


def _refuse_userinfo(base_url: Any, where: str) -> None:
    """A user:password@ in a base URL ends up in libraries' log lines; credentials belong in api_key_env."""
    if isinstance(base_url, str) and "@" in urlsplit(base_url).netloc:
        raise ConfigError(
            f"{where}: holds a user:password@ part; put the credential in the key setting (api_key_env)"
        )


def check_sdk_base_urls(env: Mapping[str, str]) -> None:
    for variable in _SDK_BASE_URLS:
        _refuse_userinfo(env.get(variable), f"${variable}")
