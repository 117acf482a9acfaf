"""Packaged data files: tissue table, devices, benchmarks (each value with its source)."""
