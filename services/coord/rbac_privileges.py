"""What Milvus's privileges are and how a grant answers a privilege check.

Milvus names every privilege twice: the API name a user types ("Search", "CollectionReadOnly")
and the metastore name kept in etcd and in policies ("PrivilegeSearch",
"PrivilegeGroupCollectionReadOnly"). Both come from pymilvus's ``common_pb2.ObjectPrivilege``
enum, so this module holds only Milvus's groupings on top of it: which object type each
privilege belongs to, the v1 groups (ReadOnly/ReadWrite/Admin), the nine built-in v2 groups and
their level (Collection, Database, Cluster), and the rule that decides whether a policy row
permits a request. The rule, in words (Milvus's casbin model): the ``admin`` role may do
anything; otherwise some policy of one of the caller's roles must name the same object type,
the same or ``*`` database, the same or ``*`` object and the same or ``*`` privilege — or, in
exactly the same database, a group privilege (All, ReadOnly, ReadWrite, Admin) that covers it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from pymilvus.grpc_gen import common_pb2

ANY = "*"
GLOBAL, COLLECTION, USER = "Global", "Collection", "User"
OBJECT_TYPES = frozenset(common_pb2.ObjectType.keys())
ROLE_ADMIN, ROLE_PUBLIC, USER_ROOT = "admin", "public", "root"
DEFAULT_ROLES = (ROLE_ADMIN, ROLE_PUBLIC)
CLUSTER, DATABASE = "Cluster", "Database"

_SINGLE = "Privilege"
_GROUP = "PrivilegeGroup"
_ENUM = frozenset(common_pb2.ObjectPrivilege.keys())


def meta_name(api: str) -> str:
    """ "Search" -> "PrivilegeSearch", "ReadOnly" -> "PrivilegeGroupReadOnly"; "" when Milvus has no such name."""
    if api == ANY:
        return ANY
    if _SINGLE + api in _ENUM:
        return _SINGLE + api
    if _GROUP + api in _ENUM:
        return _GROUP + api
    return ""


def custom_group_meta_name(group: str) -> str:
    return _GROUP + group


def api_name(meta: str) -> str:
    """The inverse of :func:`meta_name`; custom groups ("PrivilegeGroup<name>") give their name."""
    if meta == ANY:
        return ANY
    if meta.startswith(_GROUP):
        return meta[len(_GROUP) :]
    if meta.startswith(_SINGLE):
        return meta[len(_SINGLE) :]
    return meta


def is_defined(api: str) -> bool:
    """A built-in privilege or built-in privilege group name."""
    return api != ANY and meta_name(api) != ""


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Which object type each built-in privilege (API name) belongs to; anything else is Global.
_COLLECTION_PRIVILEGES = _names(
    "Load Release Compaction Insert Delete Upsert GetStatistics CreateIndex IndexDetail DropIndex Search Flush "
    "Query LoadBalance Import GetLoadingProgress GetLoadState CreatePartition DropPartition ShowPartitions "
    "HasPartition GetFlushState ReadOnly ReadWrite"
)
_GLOBAL_PRIVILEGES = _names(
    "All CreateCollection DropCollection DescribeCollection ShowCollections RenameCollection CreateOwnership "
    "DropOwnership SelectOwnership ManageOwnership BackupRBAC RestoreRBAC CreateResourceGroup "
    "UpdateResourceGroups DropResourceGroup DescribeResourceGroup ListResourceGroups TransferReplica TransferNode "
    "FlushAll CreateDatabase DropDatabase ListDatabases AlterDatabase DescribeDatabase CreateAlias DropAlias "
    "DescribeAlias ListAliases Admin CreatePrivilegeGroup DropPrivilegeGroup ListPrivilegeGroups "
    "OperatePrivilegeGroup ClusterReadOnly ClusterReadWrite ClusterAdmin DatabaseReadOnly DatabaseReadWrite "
    "DatabaseAdmin CollectionReadOnly CollectionReadWrite CollectionAdmin"
)
_USER_PRIVILEGES = _names("UpdateUser SelectUser")
OBJECT_PRIVILEGES: dict[str, frozenset[str]] = {
    COLLECTION: frozenset(_COLLECTION_PRIVILEGES),
    GLOBAL: frozenset(_GLOBAL_PRIVILEGES),
    USER: frozenset(_USER_PRIVILEGES),
}


def object_type_of(api: str) -> str:
    for object_type, privileges in OBJECT_PRIVILEGES.items():
        if api in privileges:
            return object_type
    return GLOBAL


# The v1 groups, granted like a privilege and matched by membership (metastore names).
_READ_ONLY = _names(
    "Query Search IndexDetail GetFlushState GetLoadState GetLoadingProgress HasPartition ShowPartitions "
    "ShowCollections ListAliases ListDatabases DescribeCollection DescribeDatabase DescribeAlias GetStatistics"
)
_READ_WRITE = _READ_ONLY + _names(
    "CreateIndex DropIndex CreatePartition DropPartition Load Release Insert Delete Upsert Import Flush "
    "Compaction LoadBalance RenameCollection CreateAlias DropAlias"
)
_ADMIN = _READ_WRITE + _names(
    "CreateCollection DropCollection CreateOwnership DropOwnership SelectOwnership ManageOwnership SelectUser "
    "UpdateUser BackupRBAC RestoreRBAC CreateResourceGroup UpdateResourceGroups DropResourceGroup "
    "DescribeResourceGroup ListResourceGroups TransferReplica TransferNode CreateDatabase DropDatabase AlterDatabase"
)
V1_GROUPS: dict[str, frozenset[str]] = {
    meta_name(name): frozenset(meta_name(p) for p in members)
    for name, members in (("ReadOnly", _READ_ONLY), ("ReadWrite", _READ_WRITE), ("Admin", _ADMIN))
}

# The nine built-in v2 groups (API names), each a superset of the one before it at its level.
_COLL_RO = _names(
    "Query Search IndexDetail GetFlushState GetLoadState GetLoadingProgress HasPartition ShowPartitions "
    "DescribeCollection DescribeAlias GetStatistics ListAliases"
)
_COLL_RW = _COLL_RO + _names(
    "Load Release Insert Delete Upsert Import Flush Compaction LoadBalance CreateIndex DropIndex "
    "CreatePartition DropPartition"
)
_COLL_ADMIN = _COLL_RW + _names("CreateAlias DropAlias")
_DB_RO = _names("ShowCollections DescribeDatabase")
_DB_RW = _DB_RO + _names("AlterDatabase")
_DB_ADMIN = _DB_RW + _names("CreateCollection DropCollection")
_CLUSTER_RO = _names(
    "ListDatabases SelectOwnership SelectUser DescribeResourceGroup ListResourceGroups ListPrivilegeGroups"
)
_CLUSTER_RW = _CLUSTER_RO + _names("FlushAll TransferNode TransferReplica UpdateResourceGroups")
_CLUSTER_ADMIN = _CLUSTER_RW + _names(
    "BackupRBAC RestoreRBAC CreateDatabase DropDatabase CreateOwnership DropOwnership ManageOwnership "
    "CreateResourceGroup DropResourceGroup UpdateUser RenameCollection CreatePrivilegeGroup DropPrivilegeGroup "
    "OperatePrivilegeGroup"
)
BUILTIN_GROUPS: dict[str, tuple[str, ...]] = {
    "CollectionReadOnly": _COLL_RO,
    "CollectionReadWrite": _COLL_RW,
    "CollectionAdmin": _COLL_ADMIN,
    "DatabaseReadOnly": _DB_RO,
    "DatabaseReadWrite": _DB_RW,
    "DatabaseAdmin": _DB_ADMIN,
    "ClusterReadOnly": _CLUSTER_RO,
    "ClusterReadWrite": _CLUSTER_RW,
    "ClusterAdmin": _CLUSTER_ADMIN,
}


def level_of(api: str) -> str:
    """Cluster, Database or Collection: the widest built-in group level a privilege belongs to."""
    if api in _CLUSTER_ADMIN:
        return CLUSTER
    if api in _DB_ADMIN:
        return DATABASE
    if api in _COLL_ADMIN:
        return COLLECTION
    return ""


def policy_db(privilege_meta: str, db: str) -> str:
    """Cluster-level privileges are granted and checked across databases (``*``), others per database."""
    return ANY if level_of(api_name(privilege_meta)) == CLUSTER else db


class Grant(NamedTuple):
    """One stored grant, privilege by its metastore name (or ``*``)."""

    role: str
    object_type: str
    db: str
    object_name: str
    privilege: str
    grantor: str = ""


def expand(grants: Iterable[Grant], groups: dict[str, tuple[str, ...]]) -> list[Grant]:
    """Grants of v2 or custom privilege groups become one grant per member privilege (policy rows).

    ``groups`` maps a group's API name to its members' API names. A member of type Global
    applies to ``*``; one of another type keeps the grant's object name.
    """
    out: dict[Grant, None] = {}
    for grant in grants:
        members = groups.get(api_name(grant.privilege))
        if not members:
            out[grant._replace(grantor="")] = None
            continue
        for member in members:
            object_type = object_type_of(member)
            name = ANY if object_type == GLOBAL else grant.object_name
            out[Grant(grant.role, object_type, grant.db, name, meta_name(member))] = None
    return list(out)


def _group_covers(privilege: str, policy: Grant, object_name: str) -> bool:
    if policy.privilege == meta_name("All"):
        return True
    members = V1_GROUPS.get(policy.privilege)
    if members is None:
        return False
    scoped = policy.privilege != meta_name("Admin")  # ReadOnly/ReadWrite apply to their collection
    if scoped and ANY not in (object_name, policy.object_name) and object_name != policy.object_name:
        return False
    return privilege in members


def permits(
    policies: Iterable[Grant], roles: Iterable[str], object_type: str, db: str, object_name: str, privilege: str
) -> bool:
    """Whether any policy row of ``roles`` allows ``privilege`` (metastore name) on the object."""
    held = set(roles)
    if ROLE_ADMIN in held:
        return True
    for p in policies:
        if p.role not in held:
            continue
        if (
            p.object_type == object_type
            and p.db in (ANY, db)
            and p.object_name in (ANY, object_name)
            and p.privilege in (ANY, privilege)
        ):
            return True
        if p.db == db and _group_covers(privilege, p, object_name):
            return True
    return False
