"""Benchmark harness for Quiver (`make bench`).

Quiver's speed goals are measured here, never in the test suite. The harness runs one
pymilvus workload against several targets (milvus-lite, a Quiver standalone server, later a
Quiver cluster and raw faiss) and prints a side-by-side table with ratios.

This package is imported by the workload scripts under *other* virtualenvs (milvus-lite's has
pymilvus 2.5 and numpy only), so this module and ``bench.common`` must import nothing beyond
the standard library and numpy.
"""
