"""huntlab benchmarks: `python -m benchmarks` (see README)."""
