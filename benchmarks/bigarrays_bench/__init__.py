"""The bigarrays benchmark suite: datasets, peer adapters, cases, reports.

Run it with ``python benchmarks/run.py`` (see ``benchmarks/README.md``). Never part of the
test run.
"""
