"""Benchmarks: full-size timings, never run by the tests."""
