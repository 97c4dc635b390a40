"""The interface both ledger stores implement, and the choice between them by the configured target."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from router.accounting.ledger.audit_records import AuditRecord
from router.accounting.ledger.records import TenantSpend, UsageRecord, UsageRow


class UsageStore(abc.ABC):
    """Where usage records live. Every method may raise OSError-like errors; callers decide what to do."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create the table if it is missing."""

    @abc.abstractmethod
    async def write(self, records: Sequence[UsageRecord]) -> None:
        """Insert records in one transaction: all or none."""

    @abc.abstractmethod
    async def spend_since(self, since: float) -> list[TenantSpend]:
        """Tokens and cost per tenant per UTC day since `since` (unix seconds), cache hits excluded."""

    @abc.abstractmethod
    async def usage(self, since: float, tenant: str | None) -> list[UsageRow]:
        """Per backend and model since `since`; latency percentiles over successful calls."""

    @abc.abstractmethod
    async def write_audit(self, records: Sequence[AuditRecord]) -> None:
        """Insert Admin-call records beside the usage records."""

    @abc.abstractmethod
    async def audit(self, since: float, tenant: str | None, limit: int) -> list[AuditRecord]:
        """The `limit` most recent Admin-call records since `since` (unix seconds), newest first."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the records go, safe to log (no password)."""


def open_store(target: str) -> UsageStore:
    """A PostgreSQL URL (postgres:// or postgresql://) or a SQLite file path."""
    if target.startswith(("postgres://", "postgresql://")):
        from router.accounting.ledger.postgres_store import PostgresStore

        return PostgresStore(target)
    from router.accounting.ledger.sqlite_store import SqliteStore

    return SqliteStore(target)
