"""Settings for API keys, budgets, the usage ledger, the response cache and metrics.

keys:                                  # none: the router runs open, every caller is tenant "local"
  - {tenant: acme, key_sha256: "sha256$9f..$4c.."}   # from `modelyard router hash-key`
  - {tenant: ops, key_sha256: "sha256$..", admin: true}  # may read every tenant's usage
  - {tenant: etl, key_sha256: "sha256$..", priority: batch}  # admission band when a request names none
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat

from router.config.admission import DEFAULT_PRIORITY, PRIORITIES
from router.config.schema import validate

OPEN_TENANT = "local"
DEFAULT_TENANT_BUDGET = "*"


@dataclass(frozen=True)
class ApiKey:
    tenant: str
    key_sha256: str = field(repr=False)  # "sha256$<salt hex>$<digest hex>"; never the key itself
    admin: bool = False  # may read every tenant's usage
    # Admission band of this key's requests when they name none: interactive | standard | batch.
    priority: str = DEFAULT_PRIORITY

    def __post_init__(self) -> None:
        if not self.tenant or not self.key_sha256.startswith("sha256$"):
            raise ValueError("needs a tenant and a key_sha256 from `modelyard router hash-key`")
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority: expected one of {', '.join(PRIORITIES)}, got {self.priority!r}")


@dataclass(frozen=True)
class Budget:
    """Limits per UTC day and calendar month; None means no limit."""

    daily_tokens: NonNegativeInt | None = None
    monthly_tokens: NonNegativeInt | None = None
    daily_cost_usd: NonNegativeFloat | None = None
    monthly_cost_usd: NonNegativeFloat | None = None


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool = True
    ttl_s: PositiveFloat = 300.0
    max_bytes: NonNegativeInt = 64 << 20  # in-memory cache only; Redis bounds itself (maxmemory)
    # Empty: in this router's memory; redis://... shares it between routers (may hold a password: not in repr).
    redis_url: str = field(default="", repr=False)


def default_usage_db() -> str:
    """$XDG_DATA_HOME/modelyard/usage.sqlite3, else ~/.local/share/modelyard/usage.sqlite3."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "modelyard" / "usage.sqlite3")


def parse_keys(raw: Any, where: str) -> list[ApiKey]:
    """API keys from a keys file: a list of {tenant, key_sha256, admin}, or `keys: [...]`."""
    if isinstance(raw, dict) and "keys" in raw:
        raw = raw["keys"]
    return validate(list[ApiKey], raw, where)
