"""How big a request may be: caps the router and workers both apply before any work that grows with input.

Every cap is checked from sizes protobuf already knows (counts, serialized sizes) before anything walks
the request, so a request far over a cap is refused in constant time, and one within the caps costs
bounded work on the event loop. The router reads them from config `input:`; workers use the defaults.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# OpenAI refuses more than 2048 messages; a real conversation is far shorter.
DEFAULT_MAX_MESSAGES = 2048


@dataclass(frozen=True)
class InputLimits:
    max_messages: int = DEFAULT_MAX_MESSAGES  # per chat request
    max_content_parts: int = 4096  # text and image parts over all messages
    # Serialized chat (or embed) request minus image bytes: every text field, tools and stop strings included.
    # 4 MiB is about a million tokens, a long-context model's whole window.
    max_text_bytes: int = 4 << 20
    max_image_bytes: int = 20 << 20  # all inline image data of one request (OpenAI: 20 MB an image)
    max_stop_strings: int = 16
    max_stop_bytes: int = 256  # one stop string
    max_request_id_length: int = 128  # printable ASCII only: it reaches logs and the ledger
    max_embed_inputs: int = 2048
    max_audio_bytes: int = 64 << 20  # one upload: 35 minutes of 16 kHz PCM
    max_audio_seconds: float = 3600.0  # decoded (workers) or computed from PCM size (router)
    # The longest reply a request may ask for; above it, INVALID_ARGUMENT (10**9 never reaches a backend).
    max_tokens: int = 32_768
    # Given to requests that set no max_tokens; 0 leaves them to the backend's default (every backend
    # bounds it: the context window on workers, the provider's own default in the cloud).
    default_max_tokens: int = 0
    # Image URLs a request may carry (backends and workers fetch them): schemes, and hosts (empty: any;
    # "*.example.com" matches subdomains). data: URLs carry the image inline.
    image_url_schemes: tuple[str, ...] = ("https", "data")
    image_url_hosts: tuple[str, ...] = field(default=())
    # Image URLs naming (or resolving to) loopback, private, link-local, metadata or internal addresses are
    # refused unless allow_private, or the address is in image_url_networks (CIDRs, e.g. an on-prem server).
    image_url_allow_private: bool = False
    image_url_networks: tuple[str, ...] = field(default=())
    # The router fetches image URLs itself and sends the bytes on: each redirect is checked again, and the
    # fetch is bounded by max_image_bytes, this timeout and this many redirects.
    image_fetch_timeout_s: float = 10.0
    image_max_redirects: int = 3

    def __post_init__(self) -> None:
        for name in (
            "max_messages",
            "max_content_parts",
            "max_text_bytes",
            "max_stop_strings",
            "max_stop_bytes",
            "max_request_id_length",
            "max_embed_inputs",
            "max_audio_bytes",
            "max_tokens",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"input.{name}: must be at least 1")
        if self.max_image_bytes < 0 or self.default_max_tokens < 0 or self.max_audio_seconds <= 0:
            raise ValueError(
                "input: max_image_bytes and default_max_tokens must be >= 0, max_audio_seconds > 0"
            )
        if self.default_max_tokens > self.max_tokens:
            raise ValueError("input.default_max_tokens: must not be above input.max_tokens")
        if self.image_fetch_timeout_s <= 0 or self.image_max_redirects < 0:
            raise ValueError("input: image_fetch_timeout_s must be > 0, image_max_redirects >= 0")
        for net in self.image_url_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(
                    f"input.image_url_networks: {net!r} is not a CIDR such as 10.1.2.0/24"
                ) from None
        object.__setattr__(self, "image_url_schemes", tuple(s.lower() for s in self.image_url_schemes))
        object.__setattr__(self, "image_url_hosts", tuple(h.lower() for h in self.image_url_hosts))


DEFAULT_INPUT_LIMITS = InputLimits()
