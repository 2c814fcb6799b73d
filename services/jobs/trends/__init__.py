"""Trends of finished jobs for dashboards, read from the daily rollups (migration 003)."""
