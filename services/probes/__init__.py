"""The probes service: connection tests and communication errors of connected services (schema `probes`)."""
