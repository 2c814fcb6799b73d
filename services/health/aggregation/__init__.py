"""The aggregated view: check states and resource samples folded into each service's status, and its upkeep."""
