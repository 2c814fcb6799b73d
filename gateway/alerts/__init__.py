"""GraphQL of the alert lifecycle (served by the health service's AlertsService)."""
