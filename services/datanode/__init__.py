"""The datanode role: consumes DML channels, buffers growing segments and writes binlogs.

On a flush (explicit or by policy) it writes insert, stats and delta logs to object storage
in Milvus's layout, reports them to the coordinator and advances the channel checkpoint, so
the log before that point is no longer needed for recovery.
"""
