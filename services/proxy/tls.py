"""TLS for the proxy's two ports, configured as Milvus's ``common.security.tlsMode``.

Mode 1 serves gRPC and HTTP over TLS with the server's certificate and key (one-way TLS);
mode 2 also demands a client certificate signed by the configured CA (mutual TLS), and a
client without one fails the handshake. Mode 0 is plaintext.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import grpc

from common.config import SecurityConfig


def _read(path: str | None, what: str) -> bytes:
    if not path:
        raise ValueError(f"TLS is on (tls_mode) but {what} is not configured")
    return Path(path).read_bytes()


def grpc_credentials(security: SecurityConfig) -> grpc.ServerCredentials | None:
    """Server credentials for the Milvus gRPC port, or None when TLS is off."""
    if security.tls_mode == 0:
        return None
    pair = [(_read(security.server_key_path, "server_key_path"), _read(security.server_pem_path, "server_pem_path"))]
    if security.tls_mode == 1:
        return grpc.ssl_server_credentials(pair)
    ca = _read(security.ca_pem_path, "ca_pem_path")
    return grpc.ssl_server_credentials(pair, root_certificates=ca, require_client_auth=True)


def uvicorn_ssl(security: SecurityConfig) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` serving the HTTP port with the same TLS mode."""
    if security.tls_mode == 0:
        return {}
    _read(security.server_pem_path, "server_pem_path")
    _read(security.server_key_path, "server_key_path")
    kwargs: dict[str, Any] = {"ssl_certfile": security.server_pem_path, "ssl_keyfile": security.server_key_path}
    if security.tls_mode == 2:
        _read(security.ca_pem_path, "ca_pem_path")
        kwargs |= {"ssl_ca_certs": security.ca_pem_path, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return kwargs
