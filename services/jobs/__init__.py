"""The jobs service: owns scheduler job state (schema `jobs`)."""
