"""Quiver's launcher: the ``quiver`` command that starts standalone or a single cluster role.

This package is the only place that imports several services: it wires roles together in
one process (standalone) or runs one role per process (cluster). The roles themselves never
import each other.
"""

__version__ = "0.1.0"
