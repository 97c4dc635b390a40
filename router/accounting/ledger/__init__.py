"""The usage ledger: one record per request, written off the request path to SQLite or PostgreSQL."""
