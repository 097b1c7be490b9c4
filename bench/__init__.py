"""Benchmarks of LuxOS on a database of their own: ``python -m bench`` (``make bench``), never part of ``make test``."""
