"""Benchmarks (issue: intake throughput, storms, matching); see docs/performance.md when present."""
