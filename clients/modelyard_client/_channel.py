"""Channels to the router and the typed views of its generated stubs (grpc_tools writes untyped ones)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import grpc
from modelyard.v1 import accounting_pb2, accounting_pb2_grpc, router_pb2, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from core.constants import GRPC_MESSAGE_OPTIONS
from core.tls import ChannelTls, channel_tls_from_env
from modelyard_client._service_config import service_config_option

DEFAULT_ADDRESS = "127.0.0.1:50051"
ADDRESS_ENV = "MODELYARD_ROUTER"
API_KEY_ENV = "MODELYARD_API_KEY"

Metadata = tuple[tuple[str, str], ...]


def resolve_address(address: str | None) -> str:
    return address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def resolve_api_key(api_key: str | None) -> str | None:
    """The key to send: the argument, else MODELYARD_API_KEY; an empty string sends none."""
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    return key or None


def metadata(api_key: str | None) -> Metadata:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def _user_agent() -> str:
    try:
        return f"modelyard-client/{version('modelyard')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "modelyard-client"


def options() -> list[tuple[str, Any]]:
    return [*GRPC_MESSAGE_OPTIONS, ("grpc.primary_user_agent", _user_agent()), service_config_option()]


@dataclass(frozen=True)
class Tls:
    """TLS for a client: `ca` the CA that signed the router's certificate (None: $MODELYARD_TLS_CA; empty
    with a cert: the system roots); `cert`/`key` the client's own, for mutual TLS ($MODELYARD_TLS_CERT,
    $MODELYARD_TLS_KEY). With none of them set anywhere, the channel is plaintext."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def resolve(self) -> ChannelTls | None:
        return channel_tls_from_env(self.ca, self.cert, self.key)


def sync_channel(address: str, tls: Tls | None) -> grpc.Channel:
    resolved = (tls or Tls()).resolve()
    if resolved is None:
        return grpc.insecure_channel(address, options=options())
    return grpc.secure_channel(address, resolved.credentials(), options=options() + resolved.options())


def aio_channel(address: str, tls: Tls | None) -> grpc.aio.Channel:
    resolved = (tls or Tls()).resolve()
    if resolved is None:
        return grpc.aio.insecure_channel(address, options=options())
    return grpc.aio.secure_channel(address, resolved.credentials(), options=options() + resolved.options())


@dataclass(frozen=True)
class RouterServiceStub:
    chat: grpc.UnaryStreamMultiCallable[pb.ChatRequest, pb.ChatResponse]
    embed: grpc.UnaryUnaryMultiCallable[pb.EmbedRequest, pb.EmbedResponse]
    transcribe: grpc.StreamStreamMultiCallable[pb.TranscribeRequest, pb.TranscribeResponse]
    list_models: grpc.UnaryUnaryMultiCallable[router_pb2.ListModelsRequest, router_pb2.ListModelsResponse]
    get_status: grpc.UnaryUnaryMultiCallable[router_pb2.GetStatusRequest, router_pb2.GetStatusResponse]
    get_usage: grpc.UnaryUnaryMultiCallable[accounting_pb2.GetUsageRequest, accounting_pb2.GetUsageResponse]


@dataclass(frozen=True)
class AsyncRouterStub:
    chat: grpc.aio.UnaryStreamMultiCallable[pb.ChatRequest, pb.ChatResponse]
    embed: grpc.aio.UnaryUnaryMultiCallable[pb.EmbedRequest, pb.EmbedResponse]
    transcribe: grpc.aio.StreamStreamMultiCallable[pb.TranscribeRequest, pb.TranscribeResponse]
    list_models: grpc.aio.UnaryUnaryMultiCallable[router_pb2.ListModelsRequest, router_pb2.ListModelsResponse]
    get_status: grpc.aio.UnaryUnaryMultiCallable[router_pb2.GetStatusRequest, router_pb2.GetStatusResponse]
    get_usage: grpc.aio.UnaryUnaryMultiCallable[
        accounting_pb2.GetUsageRequest, accounting_pb2.GetUsageResponse
    ]


def router_stub(channel: grpc.Channel) -> RouterServiceStub:
    stub = router_pb2_grpc.RouterServiceStub(channel)
    usage = accounting_pb2_grpc.AccountingServiceStub(channel)
    return RouterServiceStub(
        stub.Chat, stub.Embed, stub.Transcribe, stub.ListModels, stub.GetStatus, usage.GetUsage
    )


def async_router_stub(channel: grpc.aio.Channel) -> AsyncRouterStub:
    stub = router_pb2_grpc.RouterServiceStub(channel)
    usage = accounting_pb2_grpc.AccountingServiceStub(channel)
    return AsyncRouterStub(
        stub.Chat, stub.Embed, stub.Transcribe, stub.ListModels, stub.GetStatus, usage.GetUsage
    )
