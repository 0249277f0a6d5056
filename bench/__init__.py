"""Benchmarks: plain scripts a user runs (see each script's docstring)."""
