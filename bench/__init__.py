"""Benchmarks: scripts that measure, run as modules (not tests)."""
