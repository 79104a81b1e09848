"""Benchmarks for issue 2's performance targets; each figure is a ratio to a ceiling from the same run."""
