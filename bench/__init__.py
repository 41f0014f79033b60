"""Benchmarks: `python -m bench <area>`; each prints its figures and ends with one JSON line."""
