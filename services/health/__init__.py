"""The health service: owns the registry of connected services and their aggregated status (schema `health`)."""
