"""GraphQL for system health (the health service's aggregated view): summary, history, live status changes."""
