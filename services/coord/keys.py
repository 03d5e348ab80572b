"""Every KV key the coordinator writes, in one place (Milvus's layout under ``{root}/meta``)."""

from __future__ import annotations

from common.session import active_coord_key


class Keys:
    def __init__(self, meta_root: str) -> None:
        self.root = meta_root

    # root coord
    def database(self, db_id: int) -> str:
        return f"{self.root}/root-coord/database/db-info/{db_id}"

    def databases(self) -> str:
        return f"{self.root}/root-coord/database/db-info/"

    def collection(self, db_id: int, coll_id: int) -> str:
        return f"{self.root}/root-coord/database/collection-info/{db_id}/{coll_id}"

    def collections(self) -> str:
        return f"{self.root}/root-coord/database/collection-info/"

    def partition(self, coll_id: int, part_id: int) -> str:
        return f"{self.root}/root-coord/partitions/{coll_id}/{part_id}"

    def partitions(self, coll_id: int | None = None) -> str:
        return f"{self.root}/root-coord/partitions/" + (f"{coll_id}/" if coll_id is not None else "")

    def alias(self, db_id: int, alias: str) -> str:
        return f"{self.root}/root-coord/aliases/{db_id}/{alias}"

    def aliases(self) -> str:
        return f"{self.root}/root-coord/aliases/"

    # data coord
    def segment(self, coll_id: int, part_id: int, seg_id: int) -> str:
        return f"{self.root}/datacoord-meta/s/{coll_id}/{part_id}/{seg_id}"

    def segments(self, coll_id: int | None = None) -> str:
        return f"{self.root}/datacoord-meta/s/" + (f"{coll_id}/" if coll_id is not None else "")

    def channel_checkpoint(self, vchannel: str) -> str:
        return f"{self.root}/datacoord-meta/channel-cp/{vchannel}"

    def channel_checkpoints(self) -> str:
        return f"{self.root}/datacoord-meta/channel-cp/"

    def tombstone(self, kind: str, coll_id: int, sub_id: int = 0) -> str:
        """A dropped collection, partition or index whose files garbage collection still owes."""
        tail = f"{coll_id}/{sub_id}" if kind != "collection" else f"{coll_id}"
        return f"{self.root}/datacoord-meta/gc-tombstone/{kind}/{tail}"

    def tombstones(self) -> str:
        return f"{self.root}/datacoord-meta/gc-tombstone/"

    def import_job(self, job_id: int | None = None) -> str:
        """A bulk import job (Milvus's ``datacoord-meta/import-job``); no id: the prefix of all."""
        return f"{self.root}/datacoord-meta/import-job/" + (str(job_id) if job_id is not None else "")

    def compaction_task(self, coll_id: int, plan_id: int) -> str:
        return f"{self.root}/datacoord-meta/compaction-task/{coll_id}/{plan_id}"

    def compaction_tasks(self) -> str:
        return f"{self.root}/datacoord-meta/compaction-task/"

    def compaction_trigger(self, trigger_id: int) -> str:
        return f"{self.root}/datacoord-meta/compaction-trigger/{trigger_id}"

    def compaction_triggers(self) -> str:
        return f"{self.root}/datacoord-meta/compaction-trigger/"

    # index coord
    def index(self, coll_id: int, index_id: int) -> str:
        return f"{self.root}/field-index/{coll_id}/{index_id}"

    def indexes(self) -> str:
        return f"{self.root}/field-index/"

    def segment_index(self, coll_id: int, part_id: int, seg_id: int, build_id: int) -> str:
        return f"{self.root}/segment-index/{coll_id}/{part_id}/{seg_id}/{build_id}"

    def segment_indexes(self) -> str:
        return f"{self.root}/segment-index/"

    # query coord
    def load_info(self, coll_id: int) -> str:
        return f"{self.root}/querycoord-collection-loadinfo/{coll_id}"

    def load_infos(self) -> str:
        return f"{self.root}/querycoord-collection-loadinfo/"

    def resource_group(self, name: str) -> str:
        return f"{self.root}/querycoord-resource-group/{name}"

    def resource_groups(self) -> str:
        return f"{self.root}/querycoord-resource-group/"

    # election
    def active_coord(self) -> str:
        return active_coord_key(self.root)


def tso_key(kv_root: str) -> str:
    return f"{kv_root}/kv/gid/timestamp"


def id_key(kv_root: str) -> str:
    return f"{kv_root}/kv/gid/idTimestamp"
