"""Benchmarks for the performance budgets of DESIGN.md; `make bench` runs them."""
