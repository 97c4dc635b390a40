"""Protobuf messages to engine inputs and engine events back to protobuf; nothing else crosses the boundary."""

from __future__ import annotations

from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from gpu_worker.engines.base import (
    ChatInput,
    ChatMessage,
    ChatSampling,
    TranscribeOptions,
    TranscriptInfo,
    TranscriptSegment,
)

_ROLE_NAMES = {pb.ROLE_SYSTEM: "system", pb.ROLE_USER: "user", pb.ROLE_ASSISTANT: "assistant"}


def chat_input(request: pb.ChatRequest) -> ChatInput:
    """Call after core.validation.validate_chat, which has vouched for roles and parts."""
    messages = []
    for i, message in enumerate(request.messages):
        texts = []
        for j, part in enumerate(message.content):
            if part.WhichOneof("part") == "image":
                raise InvalidArgument(
                    f"messages[{i}].content[{j}].image: {request.model} on this worker takes text only"
                )
            texts.append(part.text)
        messages.append(ChatMessage(role=_ROLE_NAMES[message.role], text="".join(texts)))
    sampling = request.sampling
    return ChatInput(
        request_id=request.request_id,
        messages=tuple(messages),
        sampling=ChatSampling(
            temperature=sampling.temperature if sampling.HasField("temperature") else None,
            top_p=sampling.top_p if sampling.HasField("top_p") else None,
            max_tokens=sampling.max_tokens if sampling.HasField("max_tokens") else None,
            stop=tuple(sampling.stop),
            seed=sampling.seed if sampling.HasField("seed") else None,
        ),
    )


def transcribe_options(config: pb.TranscribeConfig) -> TranscribeOptions:
    return TranscribeOptions(
        language=config.language or None,
        word_timestamps=config.word_timestamps,
        prompt=config.prompt or None,
    )


def info_message(info: TranscriptInfo) -> pb.TranscriptionInfo:
    return pb.TranscriptionInfo(
        language=info.language,
        language_probability=info.language_probability,
        duration_seconds=info.duration_seconds,
    )


def segment_message(segment: TranscriptSegment) -> pb.Segment:
    return pb.Segment(
        id=segment.id,
        start=segment.start,
        end=segment.end,
        text=segment.text,
        words=[
            pb.Word(start=word.start, end=word.end, word=word.word, probability=word.probability)
            for word in segment.words
        ],
        avg_logprob=segment.avg_logprob,
        no_speech_prob=segment.no_speech_prob,
    )
