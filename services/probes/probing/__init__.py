"""The check engine: runs one check against a target and says what it found (shared by tests, agents, samplers)."""
