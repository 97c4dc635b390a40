"""Protobuf messages to engine inputs and engine events back to protobuf; nothing else crosses the boundary."""

from __future__ import annotations

from modelyard.v1 import inference_pb2 as pb

from core import prefix_keys
from core.chat_options import call_arguments, forced_tool, json_object, tool_parameters, tools_enabled
from core.errors import InvalidArgument
from gpu_worker.engines.base import (
    ChatInput,
    ChatMessage,
    ChatSampling,
    ReasoningText,
    TextDelta,
    ToolCallFragment,
    ToolCallMade,
    ToolSpec,
    TranscribeOptions,
    TranscriptInfo,
    TranscriptSegment,
)

_ROLE_NAMES = {
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
    pb.ROLE_TOOL: "tool",
}


def chat_input(request: pb.ChatRequest, continue_final: bool = False) -> ChatInput:
    """Call after core.validation.validate_chat, which has vouched for roles, parts and JSON texts.
    `continue_final`: the request continues its final message (WorkerService.ContinueChat)."""
    if continue_final:
        _check_continuable(request)
    messages = []
    for i, message in enumerate(request.messages):
        texts = []
        for j, part in enumerate(message.content):
            if part.WhichOneof("part") == "image":
                raise InvalidArgument(
                    f"messages[{i}].content[{j}].image: {request.model} on this worker takes text only"
                )
            texts.append(part.text)
        calls = tuple(ToolCallMade(c.id, c.name, call_arguments(c)) for c in message.tool_calls)
        messages.append(
            ChatMessage(
                role=_ROLE_NAMES[message.role],
                text="".join(texts),
                tool_calls=calls,
                tool_call_id=message.tool_call_id,
            )
        )
    sampling = request.sampling
    response_format = request.response_format
    forced = forced_tool(request)
    rendered = prefix_keys.render(request)
    return ChatInput(
        request_id=request.request_id,
        messages=tuple(messages),
        prefix_keys=tuple(
            prefix_keys.block_keys(rendered, prefix_keys.DEFAULT_BLOCK_BYTES, request.cache_salt)
        ),
        cache_salt=request.cache_salt,
        rendered_bytes=len(rendered),
        sampling=ChatSampling(
            temperature=sampling.temperature if sampling.HasField("temperature") else None,
            top_p=sampling.top_p if sampling.HasField("top_p") else None,
            max_tokens=sampling.max_tokens if sampling.HasField("max_tokens") else None,
            stop=tuple(sampling.stop),
            seed=sampling.seed if sampling.HasField("seed") else None,
            presence_penalty=sampling.presence_penalty if sampling.HasField("presence_penalty") else None,
            frequency_penalty=sampling.frequency_penalty if sampling.HasField("frequency_penalty") else None,
        ),
        tools=tuple(ToolSpec(t.name, t.description, tool_parameters(t)) for t in request.tools)
        if tools_enabled(request)
        else (),
        tool_choice="required" if request.tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED else "auto",
        forced_tool=forced.name if forced is not None else None,
        parallel_tool_calls=request.parallel_tool_calls if request.HasField("parallel_tool_calls") else True,
        json_schema=json_object(response_format.json_schema.schema, "response_format.json_schema.schema")
        if response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
        else None,
        json_object=response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
        logprobs=request.top_logprobs if request.logprobs else None,
        continue_final=continue_final,
    )


def _check_continuable(request: pb.ChatRequest) -> None:
    final = request.messages[-1] if request.messages else None
    if final is None or final.role != pb.ROLE_ASSISTANT or final.tool_calls or not final.content:
        raise InvalidArgument(
            f"messages[{len(request.messages) - 1}]: ContinueChat needs a final assistant message holding "
            "the text to continue, with no tool calls"
        )


def chat_event(event: TextDelta | ToolCallFragment | ReasoningText) -> pb.ChatResponse:
    if isinstance(event, TextDelta):
        logprobs = [
            pb.TokenLogprob(
                token=lp.token,
                logprob=lp.logprob,
                top_logprobs=[pb.TopLogprob(token=t, logprob=v) for t, v in lp.top],
            )
            for lp in event.logprobs
        ]
        return pb.ChatResponse(delta=pb.ChatDelta(text=event.text, logprobs=logprobs))
    if isinstance(event, ToolCallFragment):
        return pb.ChatResponse(
            tool_call=pb.ToolCallDelta(
                index=event.index, id=event.id, name=event.name, arguments=event.arguments
            )
        )
    return pb.ChatResponse(reasoning=pb.ReasoningDelta(text=event.text))


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
