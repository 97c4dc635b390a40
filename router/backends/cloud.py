"""What every cloud API backend shares: its config, run-time switches, capacity and images.

Backends report what a request used (tokens, audio seconds); only the router prices it (router.pipeline).

A subclass adds one provider's SDK (openai_backend, anthropic_backend); router.backends.factory picks
the subclass by `ProviderConfig.kind`.
"""

from __future__ import annotations

import abc
import base64
from urllib.parse import urlsplit, urlunsplit

import grpc
from modelyard.v1 import inference_pb2 as pb

from router.backends.base import Backend, BackendError, ModelSpec
from router.config.settings import ProviderConfig

# Health checks only ask "are you there and do you accept our key": a slow answer is a bad answer.
HEALTH_TIMEOUT_S = 5.0
# Answers to the probe (GET /models) that still mean the key was refused.
_KEY_REFUSED = frozenset({401, 403})
# What the SDKs get when the config has no key. Keyless OpenAI-compatible servers (vLLM, Ollama)
# ignore it, and an explicit value stops the SDK from falling back to OPENAI_API_KEY /
# ANTHROPIC_API_KEY, which would send one provider's key to another provider's host.
NO_API_KEY = "no-key-configured"


def model_specs(config: ProviderConfig) -> list[ModelSpec]:
    """One spec per model id, with every capability the config lists it under, in config order.

    `vision` marks the chat models listed in vision_models, which the scheduler keeps for image requests.
    """
    capabilities: dict[str, set[pb.Capability]] = {}
    for models, capability in (
        (config.chat_models, pb.CAPABILITY_CHAT),
        (config.embed_models, pb.CAPABILITY_EMBED),
        (config.transcribe_models, pb.CAPABILITY_TRANSCRIBE),
    ):
        for model in models:
            capabilities.setdefault(model, set()).add(capability)
    vision = set(config.vision_models)
    return [
        ModelSpec(
            model,
            frozenset(caps),
            engine=config.kind,
            vision=model in vision and pb.CAPABILITY_CHAT in caps,
        )
        for model, caps in capabilities.items()
    ]


class CloudBackend(Backend):
    """A cloud (or OpenAI-compatible) API. `priority` and `enabled` start from config and may change at run time."""

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(
            id=config.name,
            kind=config.kind,
            models=model_specs(config),
            enabled=config.enabled,
            priority=config.priority,
            stall_timeout_s=config.stall_timeout_s,
        )
        self.config = config
        self._vision_models = frozenset(config.vision_models)

    @property
    def max_concurrency(self) -> int:
        return self.config.max_concurrency

    @property
    def address(self) -> str:
        return without_userinfo(self.base_url)

    @property
    @abc.abstractmethod
    def base_url(self) -> str:
        """Where requests go: the configured base_url or the SDK's default."""

    def configuration_problem(self) -> str:
        if self.config.api_key_env and not self.config.api_key:
            return f"{self.config.api_key_env} is not set"
        return ""

    @abc.abstractmethod
    async def health_check(self) -> bool:
        """Whether the provider answers and accepts our credentials; never raises."""

    def accepts_images(self, model: str) -> bool:
        return model in self._vision_models

    def check_images(self, request: pb.ChatRequest) -> None:
        """Refuse images for a model not configured for vision, before anything is sent upstream."""
        if self.accepts_images(request.model):
            return
        if any(part.HasField("image") for message in request.messages for part in message.content):
            raise BackendError(
                f"model {request.model} on {self.id} does not accept images",
                retryable=False,
                status=grpc.StatusCode.INVALID_ARGUMENT,
            )

    def request_timeout(self, timeout: float | None) -> float:
        """The caller's remaining time, never more than this provider's configured timeout."""
        return self.config.timeout_s if timeout is None else min(timeout, self.config.timeout_s)

    def unsupported(self, what: str) -> BackendError:
        return BackendError(
            f"provider {self.id} ({self.kind}) does not offer {what}",
            retryable=False,
            status=grpc.StatusCode.INVALID_ARGUMENT,
        )

    def invalid(self, message: str) -> BackendError:
        return BackendError(
            f"provider {self.id}: {message}", retryable=False, status=grpc.StatusCode.INVALID_ARGUMENT
        )


def probe_answer_healthy(status: int) -> bool:
    """Whether an HTTP error status from the probe still means the upstream is there. Anything short of 5xx
    does (many OpenAI-compatible servers answer 404 or 405 to GET /models yet serve chat), except a refused
    key, which every request would meet too."""
    return status < 500 and status not in _KEY_REFUSED


def proto_float(value: float) -> float:
    """A proto float32 as the decimal the caller wrote: 0.7 arrives as 0.699999988, and goes out as 0.7."""
    return float(f"{value:.7g}")


def without_userinfo(url: str) -> str:
    """`url` minus any user:password@ part, so an address is safe to show in status and logs."""
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def image_data_url(image: pb.Image) -> str:
    """The image as a URL: its own URL, or its bytes as a data: URL."""
    if image.HasField("url"):
        return image.url
    encoded = base64.b64encode(image.data).decode("ascii")
    return f"data:{image.mime_type or 'application/octet-stream'};base64,{encoded}"


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(mime type, base64 data) of a base64 data: URL, or None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[len("data:") :].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header[: -len(";base64")], data
