"""GraphQL for the registry of connected services (the health service)."""
