"""Request bodies of Milvus's RESTful API v2, as pydantic models (they also feed /openapi.json).

Names and defaults follow Milvus (internal/distributed/proxy/httpserver/request_v2.go): camelCase
keys, ``dbName`` everywhere it matters, ``limit`` 100 for query and search, ``outputFields``
["*"] for query and get. A required string must be present and non-empty, as Go's
``binding:"required"`` demands; a missing one is answered with code 1802 naming it.
Unknown keys are ignored, as Milvus ignores them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

Required = Annotated[str, Field(min_length=1)]


def _nonzero(value: int) -> int:
    if value == 0:  # Go's binding:"required" refuses a number's zero value as missing
        raise PydanticCustomError("missing", "Field required")
    return value


RequiredNumber = Annotated[int, AfterValidator(_nonzero)]


class RestModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class EmptyReq(RestModel):
    pass


class DatabaseReq(RestModel):
    dbName: str = ""


# --- collections -----------------------------------------------------------------------
class CollectionNameReq(DatabaseReq):
    collectionName: Required
    partitionNames: list[str] = Field(default_factory=list, description="for get_load_state")


class OptionalCollectionNameReq(DatabaseReq):
    collectionName: str = ""


class RenameCollectionReq(DatabaseReq):
    collectionName: Required
    newCollectionName: Required
    newDbName: str = ""


class CollectionPropertiesReq(DatabaseReq):
    collectionName: Required
    properties: dict[str, Any] = Field(default_factory=dict)


class DropCollectionPropertiesReq(DatabaseReq):
    collectionName: Required
    propertyKeys: list[str] = Field(default_factory=list)


class CompactReq(DatabaseReq):
    collectionName: Required
    isClustering: bool = False


class CompactionStateReq(RestModel):
    jobID: int


class IndexParam(RestModel):
    fieldName: Required
    indexName: str = ""
    metricType: str = ""
    indexType: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class FieldSchemaModel(RestModel):
    fieldName: Required
    dataType: Required
    elementDataType: str = ""
    isPrimary: bool = False
    isPartitionKey: bool = False
    isClusteringKey: bool = False
    elementTypeParams: dict[str, Any] = Field(default_factory=dict)
    nullable: bool = False
    defaultValue: Any = None
    description: str = ""


class FunctionModel(RestModel):
    name: Required
    type: Required
    description: str = ""
    inputFieldNames: list[str]
    outputFieldNames: list[str]
    params: dict[str, Any] = Field(default_factory=dict)


class CollectionSchemaModel(RestModel):
    fields: list[FieldSchemaModel] = Field(default_factory=list)
    functions: list[FunctionModel] = Field(default_factory=list)
    autoID: bool = False
    enableDynamicField: bool = False


class CreateCollectionReq(DatabaseReq):
    """Quick setup (``dimension``, optional ``idType``/``metricType``/field names) or a full ``schema``."""

    collectionName: Required
    dimension: int = 0
    idType: str = ""
    autoID: bool = False
    metricType: str = ""
    primaryFieldName: str = ""
    vectorFieldName: str = ""
    collection_schema: CollectionSchemaModel = Field(default_factory=CollectionSchemaModel, alias="schema")
    indexParams: list[IndexParam] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


# --- databases -------------------------------------------------------------------------
class DatabaseNameReq(RestModel):
    dbName: Required


class DatabasePropertiesReq(RestModel):
    dbName: Required
    properties: dict[str, Any] = Field(default_factory=dict)


class DropDatabasePropertiesReq(RestModel):
    dbName: Required
    propertyKeys: list[str] = Field(default_factory=list)


# --- entities --------------------------------------------------------------------------
class InsertReq(DatabaseReq):
    collectionName: Required
    partitionName: str = ""
    data: list[dict[str, Any]]


class DeleteReq(DatabaseReq):
    """``filter`` (Milvus 2.4+), or the older ``id`` form: a key or a list of keys."""

    collectionName: Required
    partitionName: str = ""
    filter: str = ""
    exprParams: dict[str, Any] = Field(default_factory=dict)
    id: Any = None


class QueryReq(DatabaseReq):
    collectionName: Required
    partitionNames: list[str] = Field(default_factory=list)
    outputFields: list[str] = Field(default_factory=lambda: ["*"])
    filter: str = ""
    limit: int = 100
    offset: int = 0
    exprParams: dict[str, Any] = Field(default_factory=dict)
    consistencyLevel: str = ""


class GetReq(DatabaseReq):
    collectionName: Required
    partitionNames: list[str] = Field(default_factory=list)
    outputFields: list[str] = Field(default_factory=lambda: ["*"])
    id: Any
    consistencyLevel: str = ""


class SearchReq(DatabaseReq):
    collectionName: Required
    data: list[Any]
    annsField: str = ""
    partitionNames: list[str] = Field(default_factory=list)
    filter: str = ""
    groupingField: str = ""
    groupSize: int = 0
    strictGroupSize: bool = False
    limit: int = 100
    offset: int = 0
    outputFields: list[str] = Field(default_factory=list)
    searchParams: dict[str, Any] = Field(default_factory=dict)
    consistencyLevel: str = ""
    exprParams: dict[str, Any] = Field(default_factory=dict)


class SubSearchReq(RestModel):
    data: list[Any]
    annsField: str = ""
    filter: str = ""
    groupingField: str = ""
    metricType: str = ""
    limit: int = 0
    offset: int = 0
    params: dict[str, Any] = Field(default_factory=dict)
    exprParams: dict[str, Any] = Field(default_factory=dict)


class RerankModel(RestModel):
    strategy: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class HybridSearchReq(DatabaseReq):
    collectionName: Required
    partitionNames: list[str] = Field(default_factory=list)
    search: list[SubSearchReq] = Field(default_factory=list)
    rerank: RerankModel = Field(default_factory=RerankModel)
    limit: int = 100
    groupingField: str = ""
    groupSize: int = 0
    strictGroupSize: bool = False
    outputFields: list[str] = Field(default_factory=list)
    consistencyLevel: str = ""


# --- partitions, indexes, aliases ------------------------------------------------------
class PartitionReq(DatabaseReq):
    collectionName: Required
    partitionName: Required


class PartitionsReq(DatabaseReq):
    collectionName: Required
    partitionNames: list[str]


class IndexParamReq(DatabaseReq):
    collectionName: Required
    indexParams: list[IndexParam]


class IndexReq(DatabaseReq):
    collectionName: Required
    indexName: Required


class IndexPropertiesReq(IndexReq):
    properties: dict[str, Any] = Field(default_factory=dict)


class DropIndexPropertiesReq(IndexReq):
    propertyKeys: list[str] = Field(default_factory=list)


class AliasReq(DatabaseReq):
    aliasName: Required


class AliasCollectionReq(DatabaseReq):
    collectionName: Required
    aliasName: Required


# --- users, roles, privilege groups, import jobs --------------------------------------
class UserReq(RestModel):
    userName: Required


class PasswordReq(RestModel):
    userName: Required
    password: Required


class NewPasswordReq(RestModel):
    userName: Required
    password: Required
    newPassword: Required


class UserRoleReq(RestModel):
    userName: Required
    roleName: Required


class RoleReq(DatabaseReq):
    roleName: Required


class GrantReq(DatabaseReq):
    roleName: Required
    objectType: Required
    objectName: Required
    privilege: Required


class GrantV2Req(DatabaseReq):
    roleName: Required
    privilege: Required
    collectionName: str = ""


class PrivilegeGroupReq(RestModel):
    privilegeGroupName: Required
    privileges: list[str] = Field(default_factory=list)


# --- resource groups -------------------------------------------------------------------
class ResourceGroupLimit(RestModel):
    node_num: RequiredNumber


class ResourceGroupTransfer(RestModel):
    resource_group: Required


class ResourceGroupNodeFilter(RestModel):
    node_labels: dict[str, str]


class ResourceGroupConfig(RestModel):
    requests: ResourceGroupLimit
    limits: ResourceGroupLimit
    transfer_from: list[ResourceGroupTransfer] = Field(default_factory=list)
    transfer_to: list[ResourceGroupTransfer] = Field(default_factory=list)
    node_filter: ResourceGroupNodeFilter | None = None


class ResourceGroupReq(RestModel):
    name: Required
    config: ResourceGroupConfig | None = None


class UpdateResourceGroupReq(RestModel):
    resource_groups: dict[str, ResourceGroupConfig]


class TransferReplicaReq(DatabaseReq):
    sourceRgName: Required
    targetRgName: Required
    collectionName: Required
    replicaNum: RequiredNumber
