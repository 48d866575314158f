"""Benchmarks: ``python -m bench`` runs every one and prints one table (``bench/suite.py``).

Not a test suite: nothing here asserts a time. ``tests/bench/`` runs ``--quick`` and checks that every row
is reported.
"""
