"""The B2X Monitoring gRPC services: jobs, health and probes, and the runtime they share."""
