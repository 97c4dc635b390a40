"""Request validation: every rejection names the field at fault, as INVALID_ARGUMENT.

Used by the router before routing and by workers before touching an engine, so both sides agree.
"""

from __future__ import annotations

import re

from modelyard.v1 import inference_pb2 as pb

from core.chat_options import validate_chat_options, validate_message_tools
from core.constants import SAMPLE_RATE_HZ
from core.errors import InvalidArgument
from core.input_limits import DEFAULT_INPUT_LIMITS, InputLimits
from core.input_size import check_chat_size, check_image_url, check_request_id

_KNOWN_ROLES = frozenset({pb.ROLE_SYSTEM, pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL})
MAX_MODEL_CHARS = 256
MAX_CACHE_SALT_CHARS = 128  # a salt, not a payload: it rides on every request to the engine
# Model names reach logs, metrics labels and routing tables: a plain charset, no spaces or control characters.
_MODEL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:/@+-]{{0,{MAX_MODEL_CHARS - 1}}}")


def check_model_name(model: str, field: str = "model") -> None:
    if not _MODEL.fullmatch(model):
        raise InvalidArgument(
            f"{field}: {model[:MAX_MODEL_CHARS]!r} is not a model name: 1-{MAX_MODEL_CHARS} characters of letters, "
            "digits and . _ : / @ + -, starting with a letter or digit"
        )


def validate_chat(request: pb.ChatRequest, limits: InputLimits = DEFAULT_INPUT_LIMITS) -> None:
    if not request.model:
        raise InvalidArgument("model: required (a model id, a route alias, or 'auto')")
    check_model_name(request.model)
    if not request.messages:
        raise InvalidArgument("messages: at least one message is required")
    check_request_id(request.request_id, limits)
    if len(request.cache_salt) > MAX_CACHE_SALT_CHARS:
        raise InvalidArgument(f"cache_salt: at most {MAX_CACHE_SALT_CHARS} characters")
    check_chat_size(request, limits)  # first: everything below walks the request
    for i, message in enumerate(request.messages):
        if message.role not in _KNOWN_ROLES:
            raise InvalidArgument(
                f"messages[{i}].role: unknown role {message.role}; "
                "expected ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL"
            )
        validate_message_tools(message, f"messages[{i}]")
        # An assistant turn that only called tools has no content.
        if not message.content and not message.tool_calls:
            raise InvalidArgument(f"messages[{i}].content: empty; give at least one text or image part")
        for j, part in enumerate(message.content):
            _validate_part(part, f"messages[{i}].content[{j}]", limits)
    _validate_sampling(request.sampling, limits)
    validate_chat_options(request)


def _validate_part(part: pb.ContentPart, field: str, limits: InputLimits) -> None:
    kind = part.WhichOneof("part")
    if kind is None:
        raise InvalidArgument(f"{field}: neither text nor image is set")
    if kind == "image":
        source = part.image.WhichOneof("source")
        if source is None:
            raise InvalidArgument(f"{field}.image: neither data nor url is set")
        if source == "data" and not part.image.mime_type.startswith("image/"):
            raise InvalidArgument(f"{field}.image.mime_type: required with data, e.g. 'image/png'")
        if source == "url":
            check_image_url(part.image.url, f"{field}.image.url", limits)


def _validate_sampling(sampling: pb.SamplingParams, limits: InputLimits) -> None:
    if sampling.HasField("temperature") and not 0.0 <= sampling.temperature <= 2.0:
        raise InvalidArgument(f"sampling.temperature: {sampling.temperature} is outside [0, 2]")
    if sampling.HasField("top_p") and not 0.0 < sampling.top_p <= 1.0:
        raise InvalidArgument(f"sampling.top_p: {sampling.top_p} is outside (0, 1]")
    if sampling.HasField("max_tokens") and sampling.max_tokens == 0:
        raise InvalidArgument("sampling.max_tokens: must be at least 1 when set")
    if sampling.HasField("max_tokens") and sampling.max_tokens > limits.max_tokens:
        raise InvalidArgument(
            f"sampling.max_tokens: {sampling.max_tokens} is above this router's limit of {limits.max_tokens}"
        )
    if len(sampling.stop) > limits.max_stop_strings:
        raise InvalidArgument(
            f"sampling.stop: {len(sampling.stop)} stop strings; at most {limits.max_stop_strings}"
        )
    for i, stop in enumerate(sampling.stop):
        if not stop:
            raise InvalidArgument("sampling.stop: empty stop strings are not allowed")
        if len(stop.encode()) > limits.max_stop_bytes:
            raise InvalidArgument(f"sampling.stop[{i}]: longer than {limits.max_stop_bytes} bytes")


def validate_embed(request: pb.EmbedRequest, limits: InputLimits = DEFAULT_INPUT_LIMITS) -> None:
    if not request.model:
        raise InvalidArgument("model: required")
    check_model_name(request.model)
    if not request.inputs:
        raise InvalidArgument("inputs: at least one input is required")
    if len(request.inputs) > limits.max_embed_inputs:
        raise InvalidArgument(
            f"inputs: {len(request.inputs)} inputs; at most {limits.max_embed_inputs} per request"
        )
    check_request_id(request.request_id, limits)
    if request.ByteSize() > limits.max_text_bytes:
        raise InvalidArgument(f"inputs: {request.ByteSize()} bytes in all; at most {limits.max_text_bytes}")
    for i, text in enumerate(request.inputs):
        if not text:
            raise InvalidArgument(f"inputs[{i}]: empty string")


def validate_transcribe_config(
    config: pb.TranscribeConfig, limits: InputLimits = DEFAULT_INPUT_LIMITS
) -> None:
    if not config.model:
        raise InvalidArgument("config.model: required")
    check_model_name(config.model, "config.model")
    check_request_id(config.request_id, limits, "config.request_id")
    if config.encoding == pb.AUDIO_ENCODING_PCM_S16LE and config.sample_rate_hz != SAMPLE_RATE_HZ:
        raise InvalidArgument(
            f"config.sample_rate_hz: PCM_S16LE audio must be {SAMPLE_RATE_HZ} Hz, got {config.sample_rate_hz}"
        )
    if config.encoding not in (pb.AUDIO_ENCODING_UNSPECIFIED, pb.AUDIO_ENCODING_PCM_S16LE):
        raise InvalidArgument(f"config.encoding: unknown encoding {config.encoding}")
    if config.language and not (2 <= len(config.language) <= 3 and config.language.isalpha()):
        raise InvalidArgument(f"config.language: {config.language!r} is not an ISO 639-1 code such as 'en'")
