"""Resource sampling: psutil on a process or the host, Prometheus scrapes, rolling figures, threshold alerts."""
