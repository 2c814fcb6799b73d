"""The reads of the aggregated view: the health summary and the health history, from rollups."""
