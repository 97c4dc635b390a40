"""Settings for API keys, budgets, the usage ledger, the response cache and metrics.

keys:                                  # none: the router runs open, every caller is tenant "local"
  - {tenant: acme, key_sha256: "sha256$9f..$4c.."}   # from `modelyard router hash-key`
  - {tenant: ops, key_sha256: "sha256$..", admin: true}  # may read every tenant's usage
keys_file: /etc/modelyard/keys.yaml    # the same list, kept out of the main file
usage_db: ~/.local/share/modelyard/usage.sqlite3     # or postgresql://user@host/db
budgets:
  acme: {daily_tokens: 100000, monthly_cost_usd: 50}
  "*": {daily_cost_usd: 5}             # every tenant without its own entry
cache: {ttl_s: 300, max_bytes: 67108864, redis_url: ""}   # redis://host:6379/0 to share
metrics_listen: 127.0.0.1:9090         # empty: no metrics endpoint
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

OPEN_TENANT = "local"
DEFAULT_TENANT_BUDGET = "*"
T = TypeVar("T")


@dataclass(frozen=True)
class ApiKey:
    tenant: str
    key_sha256: str = field(repr=False)  # "sha256$<salt hex>$<digest hex>"; never the key itself
    admin: bool = False  # may read every tenant's usage


@dataclass(frozen=True)
class Budget:
    """Limits per UTC day and calendar month; None means no limit."""

    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    daily_cost_usd: float | None = None
    monthly_cost_usd: float | None = None


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool = True
    ttl_s: float = 300.0
    max_bytes: int = 64 << 20  # in-memory cache only; Redis bounds itself (maxmemory)
    # Empty: in this router's memory; redis://... shares it between routers (may hold a password: not in repr).
    redis_url: str = field(default="", repr=False)


def default_usage_db() -> str:
    """$XDG_DATA_HOME/modelyard/usage.sqlite3, else ~/.local/share/modelyard/usage.sqlite3."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "modelyard" / "usage.sqlite3")


def accounting_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """Pop the nested accounting sections from a YAML mapping and return them typed, for RouterConfig(**...)."""
    out: dict[str, Any] = {}
    if "keys" in raw:
        out["keys"] = parse_keys(raw.pop("keys"), "keys")
    if "budgets" in raw:
        budgets = raw.pop("budgets") or {}
        if not isinstance(budgets, dict):
            raise ValueError("budgets: expected a mapping of tenant -> limits")
        out["budgets"] = {
            str(tenant): _build(Budget, limits or {}, f"budgets.{tenant}")
            for tenant, limits in budgets.items()
        }
    if "cache" in raw:
        out["cache"] = _build(CacheConfig, raw.pop("cache") or {}, "cache")
    return out


def parse_keys(raw: Any, where: str) -> list[ApiKey]:
    if isinstance(raw, dict) and "keys" in raw:  # a keys file may hold `keys: [...]` or the bare list
        raw = raw["keys"]
    if not isinstance(raw, list):
        raise ValueError(f"{where}: expected a list of {{tenant, key_sha256}}")
    keys = [_build(ApiKey, entry, f"{where}[{i}]") for i, entry in enumerate(raw)]
    for i, key in enumerate(keys):
        if not key.tenant or not key.key_sha256.startswith("sha256$"):
            raise ValueError(
                f"{where}[{i}]: needs a tenant and a key_sha256 from `modelyard router hash-key`"
            )
    return keys


def _build(cls: type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**raw)
