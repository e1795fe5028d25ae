"""Benchmarks: each capability against a peer tool, measured in the same run, results as JSON."""
