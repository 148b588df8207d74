"""Benchmark scripts (run them as ``python bench/<name>.py``); not part of the package."""
