"""The benchmarks of this repository, run from its root as ``python -m benchmarks.NAME`` (docs/benchmarks.md)."""
