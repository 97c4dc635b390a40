"""Which TLS each router listener serves: the client listener, and the registry when it has its own port."""

from __future__ import annotations

import grpc

from core.constants import MAX_MESSAGE_BYTES
from core.listen_errors import ListenError, why_not
from core.tls import ServerTls, TlsConfigError
from router.config.settings import RouterConfig
from router.security.worker_issuer import check_distinct_cas


def check_tls_settings(config: RouterConfig) -> None:
    if bool(config.tls_cert) != bool(config.tls_key):
        raise TlsConfigError("tls_cert and tls_key: give both or neither")
    if config.tls_client_ca and not config.tls_cert:
        raise TlsConfigError("tls_client_ca: needs tls_cert and tls_key (mutual TLS is TLS first)")
    if config.workers.tls_ca and not config.tls_cert:
        raise TlsConfigError("workers.tls_ca: needs tls_cert and tls_key, the certificate workers check")
    check_distinct_cas(config)


def main_listener_tls(config: RouterConfig) -> ServerTls | None:
    """The client listener. When workers register on it too and use mTLS, it asks every caller for a
    certificate signed by either CA (clients by tls_client_ca, workers by workers.tls_ca)."""
    if not config.tls_cert:
        return None
    cas = [config.tls_client_ca] if config.tls_client_ca else []
    if config.workers.tls_ca and not config.registry_listen:
        cas.append(config.workers.tls_ca)
    return ServerTls(config.tls_cert, config.tls_key, tuple(dict.fromkeys(cas)))


def registry_listener_tls(config: RouterConfig) -> ServerTls | None:
    """The registry's own port: the router's certificate; with workers.tls_ca, workers must present theirs."""
    if not config.tls_cert:
        return None
    cas = (config.workers.tls_ca,) if config.workers.tls_ca else ()
    return ServerTls(config.tls_cert, config.tls_key, cas)


def max_receive_bytes(config: RouterConfig) -> int:
    """The largest request message read: what the input caps allow, so an oversized message (from anyone,
    keyless ones included) is refused by size rather than read and decoded whole."""
    return config.grpc_max_receive_bytes or config.input.max_text_bytes + config.input.max_image_bytes + (
        1 << 20
    )


def server_options(config: RouterConfig) -> list[tuple[str, int]]:
    return [
        *stream_window(config.grpc_stream_window_bytes),
        ("grpc.max_receive_message_length", max_receive_bytes(config)),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_concurrent_streams", config.grpc_max_concurrent_streams),
        # Keep idle worker leases alive through proxies, and notice dead peers.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # A second router on a port this one holds must fail to bind, not share the port's connections.
        ("grpc.so_reuseport", 0),
    ]


def stream_window(window_bytes: int) -> list[tuple[str, int]]:
    """A fixed stream window and no BDP pings (see RouterConfig.grpc_stream_window_bytes); none: gRPC's."""
    if not window_bytes:
        return []
    return [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", window_bytes)]


def credentials(tls: ServerTls | None) -> grpc.ServerCredentials | None:
    """Read the files now, so a missing or unreadable one stops the router before it binds anything."""
    return None if tls is None else tls.credentials()


def bind(server: grpc.aio.Server, listen: str, creds: grpc.ServerCredentials | None, setting: str) -> int:
    """Add the port; a ListenError naming `setting` (the config key) when it cannot be bound."""
    busy = why_not(listen)
    if busy is not None:
        raise ListenError(setting, listen, busy)
    try:
        port = server.add_insecure_port(listen) if creds is None else server.add_secure_port(listen, creds)
    except RuntimeError:  # grpcio's "Failed to bind to address"
        port = 0
    if port == 0:
        raise ListenError(setting, listen, "gRPC could not bind it")
    return port
