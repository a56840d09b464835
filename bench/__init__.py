"""Benchmarks: one package per stage (`bench/<name>/__main__.py`), run as `python -m bench.<name>`."""
