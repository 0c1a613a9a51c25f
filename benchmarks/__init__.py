"""Benchmark scripts; each module docstring says what it measures and how to run it."""
