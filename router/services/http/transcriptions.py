"""POST /v1/audio/transcriptions: a multipart upload (file, model, language, prompt, response_format,
timestamp_granularities[], stream) in; json, text or verbose_json out, or with stream=true OpenAI's
transcript.text.delta / transcript.text.done events (transcription_stream).

The audio is read only after the caller is known and holds an upload slot (the pipeline calls `upload`
then), in chunks, each counted against the router's upload capacity before it is kept, and refused past
input.max_audio_bytes; the other fields are small and bounded too.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import BodyPartReader, web
from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from router.pipeline import RequestPipeline, Upload
from router.services.http.call import call_of, within_deadline
from router.services.http.chat_response import modelyard_json
from router.services.http.routing_hints import request_id, routing_hints
from router.services.http.transcription_stream import asked_to_stream, stream_transcription
from router.upload_gate import UploadMeter

FORMATS = ("json", "text", "verbose_json")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class FormLimits:
    """The upload's fields other than the file (model, language, prompt, ...): how many, how many bytes."""

    max_fields: int = 32
    max_bytes: int = 64 << 10


@dataclass
class _Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    audio: list[bytes] = field(default_factory=list)
    audio_seen: bool = False

    def one(self, name: str) -> str:
        values = self.fields.get(name)
        return values[-1] if values else ""


class TranscriptionsHandler:
    def __init__(
        self, pipeline: RequestPipeline, max_audio_bytes: int, form: FormLimits | None = None
    ) -> None:
        self._pipeline = pipeline
        self._max_audio_bytes = max_audio_bytes
        self._form = form or FormLimits()

    async def handle(self, http: web.Request) -> web.StreamResponse:
        call = call_of(http)
        form = _Form()

        async def upload(meter: UploadMeter) -> Upload:
            await self._read(http, form, meter)
            return _config(form, http), form.audio

        segments: list[pb.Segment] = []
        info = pb.TranscriptionInfo()
        usage = pb.Usage()
        events = cast(AsyncGenerator[pb.TranscribeResponse, None], self._pipeline.transcribe(upload, call))
        async with within_deadline(call), contextlib.aclosing(events):
            first = await anext(events, None)  # the upload has been read by now, so the form is known
            if asked_to_stream(form.one("stream")):
                return await stream_transcription(http, first, events)
            async for event in _prepend(first, events):
                kind = event.WhichOneof("event")
                if kind == "segment":
                    segments.append(event.segment)
                elif kind == "info":
                    info = event.info
                elif kind == "usage":
                    usage = event.usage
        return _answer(form.one("response_format") or "json", info, segments, usage)

    async def _read(self, http: web.Request, form: _Form, meter: UploadMeter) -> None:
        if http.content_type != "multipart/form-data":
            raise InvalidArgument("body: expected multipart/form-data with a `file` part")
        reader = await http.multipart()
        size = 0
        fields, field_bytes = 0, 0
        while (part := await meter.within_idle(reader.next())) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.name == "file":
                form.audio_seen = True
                while chunk := await meter.within_idle(part.read_chunk(_CHUNK)):
                    size += len(chunk)
                    if size > self._max_audio_bytes:
                        raise InvalidArgument(f"file: larger than the {self._max_audio_bytes} byte limit")
                    meter.take(len(chunk))  # the router's upload capacity, before the chunk is kept
                    form.audio.append(chunk)
                continue
            fields += 1
            if fields > self._form.max_fields:
                raise InvalidArgument(
                    f"body: more than {self._form.max_fields} form fields (http_max_form_fields)"
                )
            value = bytearray()
            while chunk := await meter.within_idle(part.read_chunk(_CHUNK)):
                value += chunk
                field_bytes += len(chunk)
                if field_bytes > self._form.max_bytes:
                    raise InvalidArgument(
                        f"{part.name}: the form's fields pass {self._form.max_bytes} bytes (http_max_form_bytes)"
                    )
            form.fields.setdefault(part.name, []).append(value.decode(errors="replace"))
        if not form.audio_seen:
            raise InvalidArgument("file: required (the audio file, as a multipart file part)")


async def _prepend(
    first: pb.TranscribeResponse | None, rest: AsyncIterator[pb.TranscribeResponse]
) -> AsyncIterator[pb.TranscribeResponse]:
    if first is not None:
        yield first
    async for event in rest:
        yield event


def _config(form: _Form, http: web.Request) -> pb.TranscribeConfig:
    response_format = form.one("response_format") or "json"
    if response_format not in FORMATS:
        raise InvalidArgument(
            f"response_format: expected one of {', '.join(FORMATS)}, got {response_format!r}"
        )
    granularities = set(form.fields.get("timestamp_granularities[]", [])) | set(
        form.fields.get("timestamp_granularities", [])
    )
    unknown = granularities - {"word", "segment"}
    if unknown:
        raise InvalidArgument(f"timestamp_granularities[]: expected word or segment, got {sorted(unknown)}")
    return pb.TranscribeConfig(
        model=form.one("model"),
        language=form.one("language"),
        prompt=form.one("prompt"),
        word_timestamps="word" in granularities,
        routing=routing_hints(http.headers),
        request_id=request_id(http.headers),
    )


def _answer(
    response_format: str, info: pb.TranscriptionInfo, segments: list[pb.Segment], usage: pb.Usage
) -> web.Response:
    # Whisper's segments start with a space and cloud APIs' do not: join the words either way.
    text = " ".join(piece for s in segments if (piece := s.text.strip()))
    if response_format == "text":
        return web.Response(text=text + "\n", content_type="text/plain")
    seconds = usage.audio_seconds or info.duration_seconds
    payload: dict[str, Any] = {"text": text, "usage": {"type": "duration", "seconds": round(seconds, 3)}}
    if response_format == "verbose_json":
        payload = {
            "task": "transcribe",
            "language": info.language,
            "duration": info.duration_seconds,
            "text": text,
            "segments": [_segment(s) for s in segments],
            "usage": payload["usage"],
        }
        words = [w for s in segments for w in s.words]
        if words:
            payload["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in words]
    payload["modelyard"] = modelyard_json(usage)
    return web.Response(body=json.dumps(payload), content_type="application/json")


def _segment(s: pb.Segment) -> dict[str, Any]:
    return {
        "id": s.id,
        "seek": 0,
        "start": s.start,
        "end": s.end,
        "text": s.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": s.avg_logprob,
        "compression_ratio": 0.0,
        "no_speech_prob": s.no_speech_prob,
    }
