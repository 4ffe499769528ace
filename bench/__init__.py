"""Benchmarks, run as `python -m bench.<name>`; each measures its baseline too."""
