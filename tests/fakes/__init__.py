"""Fakes at the edges: real local servers that stand in for third-party APIs in tests and benchmarks."""
