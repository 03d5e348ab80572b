"""Pieces every Quiver role shares: interfaces to the outside world and the data model.

Roles (services/*) import from here and never from each other. Each external system
(message stream, metadata KV, object storage) sits behind a narrow interface with a real
backend and an in-memory or local one, chosen by configuration.
"""
