"""Small facts about requests the router needs while routing them."""

from __future__ import annotations

from typing import TypeVar

from modelyard.v1 import inference_pb2 as pb

R = TypeVar("R", pb.ChatRequest, pb.EmbedRequest, pb.TranscribeConfig)


def for_model(request: R, model: str) -> R:
    """The request as one candidate should see it: an alias or "auto" replaced by that candidate's model."""
    if request.model == model:
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    copy.model = model
    return copy


def has_images(request: pb.ChatRequest) -> bool:
    return any(part.HasField("image") for message in request.messages for part in message.content)
