"""GraphQL for administration: API keys and the audit log (admin role)."""
