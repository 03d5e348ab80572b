"""The coordinator ("mixcoord"): root, data, query and index coordination in one role.

Root owns DDL, the TSO and ID allocation; data owns segments, flush and channel checkpoints;
index owns build tasks; query owns load state and what each querynode serves. All metadata
lives in the KV store through one catalog (:mod:`services.coord.catalog`).
"""
