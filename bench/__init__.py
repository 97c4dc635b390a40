"""Modelyard benchmarks: `python -m bench [--quick]` writes bench/results/RESULTS.md and plots."""
