"""GraphQL for connection tests and communication errors (the probes service)."""
