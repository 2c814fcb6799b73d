"""The registry of connected services: validation rules, the declarative file, storage, use cases, protobuf."""
