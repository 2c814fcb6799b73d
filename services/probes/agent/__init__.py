"""Periodic probe agents: leases on targets in Redis, slot scheduling, circuit breakers, batched storage,
the check-states hand-off to the health service, and resource sampling (`resources/`)."""
