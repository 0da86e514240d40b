"""Benchmarks of the daemon against a naive poller: ``python -m bench`` (see BENCHMARKS.md)."""
