"""The indexnode role: builds vector indexes of flushed segments from their binlogs.

Build tasks arrive from the coordinator, run on a small pool (faiss uses all cores for one
build), and their results (index files in object storage) are collected by the
coordinator's polling, so a lost node only costs a retry.
"""
