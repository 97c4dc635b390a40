"""Who called and what it cost: keys, budgets, pricing, tickets, metrics, the response cache and the usage ledger."""
