"""The GraphQL gateway: the only public API for people (dashboard, b2c CLI, scripts)."""
