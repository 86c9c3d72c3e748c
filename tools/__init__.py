"""Helpers for building and driving the executable (tests and benchmarks import these)."""
