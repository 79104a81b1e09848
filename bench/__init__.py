"""Benchmarks (run against a real PostgreSQL): see each module's docstring."""
