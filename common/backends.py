"""Build the KV store, message stream and object storage a configuration asks for.

Standalone defaults to the local backends under the data directory; a cluster names etcd,
Pulsar and S3. Real-backend modules are imported only when chosen, so standalone needs none
of their client libraries.
"""

from __future__ import annotations

import os

from common.config import QuiverConfig
from common.kv.base import KV
from common.msgstream.base import MsgStream
from common.storage.base import ObjectStorage


def open_kv(cfg: QuiverConfig) -> KV:
    backend = cfg.kv.backend
    if backend == "memory":
        from common.kv.memory import MemoryKV

        return MemoryKV()
    if backend == "local":
        from common.kv.local import LocalKV

        os.makedirs(cfg.data_dir, exist_ok=True)
        return LocalKV(os.path.join(cfg.data_dir, "meta.db"))
    from common.kv.etcd import EtcdKV

    e = cfg.kv.etcd
    return EtcdKV(e.endpoints, user=e.user, password=e.password, ca_cert=e.ca_cert, cert=e.cert, key=e.key)


def open_stream(cfg: QuiverConfig) -> MsgStream:
    backend = cfg.stream.backend
    if backend == "memory":
        from common.msgstream.memory import MemoryStream

        return MemoryStream()
    if backend == "local":
        from common.msgstream.local import LocalLogStream

        return LocalLogStream(os.path.join(cfg.data_dir, "wal"), fsync=cfg.stream.fsync)
    from common.msgstream.pulsar import PulsarStream, PulsarTls

    p = cfg.stream.pulsar
    tls = PulsarTls(
        trust_certs_file_path=p.tls_trust_certs_file_path,
        allow_insecure_connection=p.tls_allow_insecure_connection,
        validate_hostname=p.tls_validate_hostname,
        cert_file=p.tls_cert_file,
        key_file=p.tls_key_file,
    )
    return PulsarStream(
        p.service_url,
        tenant=p.tenant,
        namespace=p.namespace,
        topic_prefix=cfg.stream.topic_prefix,
        auth_token=p.auth_token,
        tls=tls,
    )


def open_storage(cfg: QuiverConfig) -> ObjectStorage:
    backend = cfg.storage.backend
    if backend == "memory":
        from common.storage.memory import MemoryStorage

        return MemoryStorage()
    if backend == "local":
        from common.storage.local import LocalStorage

        return LocalStorage(os.path.join(cfg.data_dir, cfg.storage.root_path))
    from common.storage.s3 import S3Storage

    s = cfg.storage.s3
    return S3Storage(
        s.endpoint,
        s.bucket,
        s.access_key,
        s.secret_key,
        root=cfg.storage.root_path,
        secure=s.secure,
        region=s.region,
        ca_cert=s.ca_cert,
        verify=s.verify,
        client_cert=s.client_cert,
        client_key=s.client_key,
    )
