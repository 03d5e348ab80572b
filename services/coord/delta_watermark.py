"""How far a flushed segment's delta logs are complete: what lets a shard leader forget old deletes.

A shard leader buffers every delete it consumes, because a sealed copy a worker loads has only
the deletes of its delta logs and gets the rest from that buffer (services/querynode/delegator.py).
The buffer can drop a delete once no copy that will ever be caught up from it lacks the delete, so
each copy is loaded with its segment's *watermark*: a timestamp W such that its delta logs hold
every delete at or below W that hits its rows.

- A segment the channel's datanode flushed, or knows as flushed, gets the deletes of every later
  sync. Each checkpoint save records ``synced`` (the datanode's last timetick: every delete at or
  below it has been consumed and written) and ``seq`` (saves so far), atomically with the delta
  logs; so such a segment's watermark is the channel's ``synced``.
- A segment committed outside the datanode's flush (a bulk import's, a compaction result) is
  learned by the datanode at the start of a sync (services/datanode/channel.py ``_learn_flushed``);
  the first save after the commit may come from a sync that started before it, the second cannot.
  Until then its watermark is what it was complete to at the commit (``delta_floor_ts``: an
  import's row timestamp, as no older delete can hit its rows; the least of a compaction's inputs).

Watermarks only grow (``synced`` never goes back), so one read at any time is a safe lower bound
for the delta logs a load reads later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from services.coord.meta import SegmentInfo

COVERED_AFTER_SAVES = 2  # checkpoint saves after a commit from which the channel's "synced" applies


@dataclass(frozen=True)
class ChannelSync:
    synced: int = 0  # every delete at or below it is in the delta logs of the segments covered
    seq: int = 0  # checkpoint saves so far


def channel_sync(raw_checkpoint: str | None) -> ChannelSync:
    """The sync state of a channel from its stored checkpoint (JSON)."""
    if not raw_checkpoint:
        return ChannelSync()
    cp = json.loads(raw_checkpoint)
    return ChannelSync(int(cp.get("synced", 0) or 0), int(cp.get("seq", 0) or 0))


def watermark(seg: SegmentInfo, sync: ChannelSync) -> int:
    """Every delete at or below this that hits ``seg``'s rows is in its delta logs."""
    if sync.seq >= seg.delta_covered_seq:
        return max(seg.delta_floor_ts, sync.synced)
    return seg.delta_floor_ts


def covered_from(sync: ChannelSync) -> int:
    """``delta_covered_seq`` of a segment committed now outside the datanode's flush."""
    return sync.seq + COVERED_AFTER_SAVES
