"""Benchmarks as measured laws: the benchmark programs, summaries, comparison, counting and rendering."""
