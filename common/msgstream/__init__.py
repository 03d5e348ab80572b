"""The message stream: Pulsar in a cluster, a local durable log in standalone, memory in tests."""

from common.msgstream.base import MsgStream, Reader, StreamMessage

__all__ = ["MsgStream", "Reader", "StreamMessage"]
