"""The size checks of core.input_limits, each naming the field at fault, as INVALID_ARGUMENT.

Order matters: counts protobuf keeps (len of a repeated field) come first and cost nothing; the walks
that follow are bounded by the counts already checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from modelyard.v1 import inference_pb2 as pb

from core.constants import SAMPLE_RATE_HZ
from core.errors import InvalidArgument
from core.input_limits import InputLimits
from core.url_policy import address_allowed, internal_name, literal_ip

_PCM_BYTES_PER_SECOND = SAMPLE_RATE_HZ * 2  # 16-bit mono


def check_chat_size(request: pb.ChatRequest, limits: InputLimits) -> None:
    count = len(request.messages)
    if count > limits.max_messages:
        raise InvalidArgument(f"messages: {count} messages; at most {limits.max_messages} per request")
    parts = 0
    for message in request.messages:  # at most max_messages
        parts += len(message.content)
    if parts > limits.max_content_parts:
        raise InvalidArgument(
            f"messages: {parts} content parts in all; at most {limits.max_content_parts} per request"
        )
    image_bytes = 0
    for message in request.messages:
        for part in message.content:  # at most max_content_parts
            if part.HasField("image"):
                image_bytes += len(part.image.data)
    if image_bytes > limits.max_image_bytes:
        raise InvalidArgument(f"messages: {image_bytes} bytes of images; at most {limits.max_image_bytes}")
    text_bytes = request.ByteSize() - image_bytes
    if text_bytes > limits.max_text_bytes:
        raise InvalidArgument(
            f"messages: about {text_bytes} bytes of text in all; at most {limits.max_text_bytes} per request"
        )


def check_request_id(request_id: str, limits: InputLimits, field: str = "request_id") -> None:
    """Request ids reach logs, metrics exemplars and the ledger: short, printable ASCII, no spaces."""
    if len(request_id) > limits.max_request_id_length:
        raise InvalidArgument(f"{field}: longer than {limits.max_request_id_length} characters")
    if request_id and not (request_id.isascii() and request_id.isprintable() and " " not in request_id):
        raise InvalidArgument(f"{field}: printable ASCII without spaces only")


def check_image_url(url: str, field: str, limits: InputLimits) -> None:
    """Backends and workers fetch image URLs: only allowed schemes and hosts (no http://169.254.169.254)."""
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise InvalidArgument(f"{field}: not a URL ({e})") from None
    scheme = parts.scheme.lower()
    if scheme not in limits.image_url_schemes:
        allowed = ", ".join(limits.image_url_schemes) or "none"
        raise InvalidArgument(f"{field}: scheme {scheme or '(none)'!r} is not allowed; allowed: {allowed}")
    if scheme == "data":
        if not parts.path.startswith("image/"):
            raise InvalidArgument(f"{field}: a data: URL must hold an image, e.g. data:image/png;base64,...")
        return
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidArgument(f"{field}: no host")
    if limits.image_url_hosts and not any(_host_matches(host, allowed) for allowed in limits.image_url_hosts):
        raise InvalidArgument(f"{field}: host {host!r} is not in this router's image_url_hosts")
    check_image_host(host, field, limits)


def check_image_host(host: str, field: str, limits: InputLimits) -> None:
    """Refuse hosts that name the operator's own network: private IP literals and internal names."""
    ip = literal_ip(host)
    if ip is not None:
        if not address_allowed(ip, limits.image_url_allow_private, limits.image_url_networks):
            raise InvalidArgument(
                f"{field}: {host!r} is a loopback, private, link-local or metadata address; image URLs must be public"
            )
        return
    if not limits.image_url_allow_private and internal_name(host):
        raise InvalidArgument(f"{field}: {host!r} is an internal name; image URLs must name a public host")


def _host_matches(host: str, allowed: str) -> bool:
    if allowed.startswith("*."):
        return host.endswith(allowed[1:])
    return host == allowed


def check_audio_bytes(size: int, limits: InputLimits) -> None:
    if size > limits.max_audio_bytes:
        raise InvalidArgument(f"audio: larger than the {limits.max_audio_bytes} byte limit")


def check_audio_seconds(seconds: float, limits: InputLimits) -> None:
    if seconds > limits.max_audio_seconds:
        raise InvalidArgument(f"audio: {seconds:.1f} s long; at most {limits.max_audio_seconds:g} s")


def pcm_seconds(size: int) -> float:
    return size / _PCM_BYTES_PER_SECOND
