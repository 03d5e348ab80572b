"""Quiver's configuration: one typed model, read from flags, environment and a YAML file.

Precedence, highest first: command-line flags (passed as init values), environment variables
(``QUIVER_`` prefix, ``__`` between nested names: ``QUIVER_STORAGE__BACKEND=s3``), the YAML
file (``--config`` or ``QUIVER_CONFIG``), then the defaults below, which make standalone run
with nothing else installed.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class EtcdConfig(BaseModel):
    endpoints: list[str] = ["127.0.0.1:2379"]
    root_path: str = "by-dev"
    user: str | None = None
    password: str | None = None
    ca_cert: str | None = None  # etcd.ssl.tlsCACert: verify the server against this CA (turns TLS on)
    cert: str | None = None  # etcd.ssl.tlsCert: client certificate, for etcd's --client-cert-auth
    key: str | None = None  # etcd.ssl.tlsKey: the client certificate's key


class KVConfig(BaseModel):
    backend: Literal["local", "memory", "etcd"] = "local"
    etcd: EtcdConfig = EtcdConfig()


class PulsarConfig(BaseModel):
    service_url: str = "pulsar://127.0.0.1:6650"
    tenant: str = "public"
    namespace: str = "default"
    auth_token: str | None = None  # Pulsar token authentication, when the broker asks for it
    # TLS (a ``pulsar+ssl://`` service_url): the CA to trust, whether to check the broker's name,
    # and a client certificate for Pulsar's TLS authentication provider
    tls_trust_certs_file_path: str | None = None
    tls_allow_insecure_connection: bool = False
    tls_validate_hostname: bool = True
    tls_cert_file: str | None = None
    tls_key_file: str | None = None


class StreamConfig(BaseModel):
    backend: Literal["local", "memory", "pulsar"] = "local"
    topic_prefix: str = "by-dev"
    pchannel_count: int = 16
    fsync: bool = False
    pulsar: PulsarConfig = PulsarConfig()


class S3Config(BaseModel):
    endpoint: str = "127.0.0.1:9000"
    bucket: str = "quiver"
    access_key: str = "minioadmin"
    secret_key: str = "minioadmin"
    secure: bool = False  # https (also implied by an https:// endpoint)
    region: str = "us-east-1"
    ca_cert: str | None = None  # verify the server against this CA bundle (default: the system's)
    verify: bool = True  # False: https without checking the server certificate (tests only)
    client_cert: str | None = None  # a client certificate for servers that ask for one (mutual TLS)
    client_key: str | None = None


class StorageConfig(BaseModel):
    backend: Literal["local", "memory", "s3"] = "local"
    root_path: str = "files"
    s3: S3Config = S3Config()


class DataConfig(BaseModel):
    """Segment policies (datacoord) and write buffering (datanode)."""

    segment_max_rows: int = 1_000_000
    segment_max_mb: int = 512
    segment_max_idle_seconds: float = 600.0
    segment_max_lifetime_seconds: float = 24 * 3600.0
    sync_period_seconds: float = 10.0
    # compaction (Milvus "mix" compaction): rewrite segments with many deleted rows, merge small ones
    compaction_enabled: bool = True  # automatic triggering in the coordinator loop (manual always works)
    compaction_interval_seconds: float = 60.0
    compaction_deleted_ratio: float = 0.2  # deleted / rows at or above which a segment is rewritten
    compaction_small_proportion: float = 0.5  # below this share of the max segment size a segment is "small"
    compaction_timeout_seconds: float = 600.0  # an executing plan older than this fails (inputs freed)
    compaction_max_attempts: int = 3
    # garbage collection of the files and metadata of dropped segments, collections, partitions, indexes
    gc_enabled: bool = True
    gc_interval_seconds: float = 60.0
    gc_drop_tolerance_seconds: float = 3600.0  # how long dropped things' files outlive the drop


class QueryConfig(BaseModel):
    memory_budget_mb: int = 8192
    search_threads: int = 4


class SecurityConfig(BaseModel):
    """Milvus's ``common.security`` and ``tls`` settings: authentication, RBAC and TLS of the proxy.

    With ``authorization_enabled`` every Milvus RPC and REST call must carry ``user:password``
    credentials, and each is checked against the caller's roles. ``tls_mode`` 1 serves the proxy's
    gRPC and HTTP ports over TLS (server certificate only), 2 also requires a client certificate
    signed by ``ca_pem_path`` (mutual TLS), as Milvus's ``common.security.tlsMode``.
    """

    authorization_enabled: bool = False
    default_root_password: str = "Milvus"  # the root user's password at first start
    superusers: list[str] = []  # may change another user's password without the old one
    auth_cache_ttl_seconds: float = 5.0  # how long a proxy trusts a verified credential or privilege check
    tls_mode: int = Field(default=0, ge=0, le=2)
    server_pem_path: str | None = None
    server_key_path: str | None = None
    ca_pem_path: str | None = None


class QuotaConfig(BaseModel):
    """Milvus's ``quotaAndLimits`` and proxy/rootCoord limits, with Milvus's defaults (-1: no limit).

    Rates are cluster-wide, as in Milvus: each proxy enforces its share (the rate divided by the
    number of live proxies). DML rates are MB/s of request size, search rates vectors (nq) per
    second, query rates requests per second; ``*_collection`` variants apply to each collection.
    Enforced by services/proxy/quota.py; the collection, partition and shard counts by the coordinator.
    """

    enabled: bool = True  # quotaAndLimits.enabled
    # counts (rootCoord.maxDatabaseNum, quotaAndLimits.limits.maxCollectionNum[PerDB], rootCoord.maxPartitionNum)
    max_database_num: int = 64
    max_collection_num: int = 65536
    max_collection_num_per_db: int = 65536
    max_partition_num: int = 1024
    # schema (proxy.maxFieldNum, proxy.maxVectorFieldNum, proxy.maxShardNum, proxy.maxDimension)
    max_field_num: int = 64
    max_vector_field_num: int = 4
    max_shard_num: int = 16
    max_dimension: int = 32768
    # request sizes: proxy.grpc.serverMaxRecvSize/serverMaxSendSize, quotaAndLimits.limits.maxInsertSize
    server_max_recv_size: int = 67108864
    server_max_send_size: int = 268435456
    max_insert_size: int = -1
    # reads: quotaAndLimits.limits.topK, .nq, .maxQueryResultWindow
    top_k: int = 16384
    nq: int = 16384
    max_query_result_window: int = 16384
    # rates (quotaAndLimits.dml.*, quotaAndLimits.dql.*): off unless enabled
    dml_enabled: bool = False
    insert_rate: float = -1  # MB/s
    insert_rate_collection: float = -1
    upsert_rate: float = -1
    upsert_rate_collection: float = -1
    delete_rate: float = -1
    delete_rate_collection: float = -1
    dql_enabled: bool = False
    search_rate: float = -1  # vectors/s
    search_rate_collection: float = -1
    query_rate: float = -1  # requests/s
    query_rate_collection: float = -1
    # quotaAndLimits.limitWriting.forceDeny / limitReading.forceDeny
    deny_writing: bool = False
    deny_reading: bool = False
    proxy_count_interval_seconds: float = 3.0  # quotaCenterCollectInterval: how often a proxy recounts proxies


class QuiverConfig(BaseSettings):
    """Everything a role needs to start. Field names map 1:1 to YAML keys."""

    model_config = SettingsConfigDict(
        env_prefix="QUIVER_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: str = "./quiver-data"
    host: str = "127.0.0.1"  # the address to bind
    advertise_host: str = ""  # the address other roles reach this one at (default: host)
    grpc_port: int = 19530
    http_port: int = 9091
    internal_port: int = 0  # cluster roles: the port of Quiver's internal RPC API, TCP (0: free)
    node_id: int = 0  # 0: allocate from coord
    timetick_interval_ms: int = 100
    session_ttl_seconds: float = 10.0
    shards_num: int = 1
    log_level: str = "INFO"
    log_format: str = "plain"  # "json": one JSON object per line (common/logs.py)
    metrics_port: int = 0  # non-proxy roles: serve Prometheus /metrics on this port (0: off)
    kv: KVConfig = KVConfig()
    stream: StreamConfig = StreamConfig()
    storage: StorageConfig = StorageConfig()
    data: DataConfig = DataConfig()
    query: QueryConfig = QueryConfig()
    security: SecurityConfig = SecurityConfig()
    quota: QuotaConfig = QuotaConfig()
    config_file: str | None = Field(default=None, exclude=True)

    @property
    def reachable_host(self) -> str:
        """Where other roles connect to this one: advertise_host, else host."""
        return self.advertise_host or self.host

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _YAML_FILE.get() or os.environ.get("QUIVER_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


# The YAML file of the load_config call under way (a context variable, not a global: building a
# QuiverConfig elsewhere must never pick up a file some earlier call named).
_YAML_FILE: ContextVar[str | None] = ContextVar("quiver_yaml_file", default=None)


def load_config(config_file: str | None = None, **flags: Any) -> QuiverConfig:
    """Build the configuration: ``flags`` (None values ignored) > env > YAML > defaults."""
    if config_file and not os.path.exists(config_file):
        raise FileNotFoundError(f"config file {config_file} does not exist")
    given = {k: v for k, v in flags.items() if v is not None}
    token = _YAML_FILE.set(config_file)
    try:
        return QuiverConfig(**given)
    finally:
        _YAML_FILE.reset(token)
