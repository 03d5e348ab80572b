"""The querynode role: serves growing data from the DML channels and sealed segments from storage.

For each watched channel it keeps growing segments (searched exactly), applies deletes as
per-row delete timestamps, and tracks the channel's serviceable time (tsafe) from timeticks.
Sealed segments come from binlogs and index files; when a sealed version loads, the growing
copy of the same segment is dropped in the same step (the handoff).
"""
