"""Backend contract checks: plain functions that take a backend and assert the interface's promises.

Unit tests run them on the in-process backends and integration tests on the real servers,
so every backend is held to the same behaviour.
"""
