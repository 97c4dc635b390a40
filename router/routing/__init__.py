"""Where a request runs: backend registry, scheduler and scorers, failover, circuits, health, statistics."""
