"""Runtime shared by every service: settings, logging, database, events, gRPC bootstrap, metrics."""
