"""Periodic probe agents: leases on targets in Redis, slot scheduling, circuit breakers, batched storage."""
