"""Our proto messages in the OpenAI wire format and back: chat messages, audio files, transcriptions.

Conversions raise ValueError for input the API cannot take; the backend turns that into
INVALID_ARGUMENT with its own name on it.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterable, Sequence

from modelyard.v1 import inference_pb2 as pb
from openai.types.audio import Transcription, TranscriptionVerbose, TranscriptionWord
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)

from core.constants import SAMPLE_RATE_HZ
from router.backends.cloud import image_data_url

# Magic bytes -> (file extension, MIME type). The API picks its decoder by the file name's extension.
_AUDIO_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"RIFF", "wav", "audio/wav"),
    (0, b"fLaC", "flac", "audio/flac"),
    (0, b"OggS", "ogg", "audio/ogg"),
    (0, b"ID3", "mp3", "audio/mpeg"),
    (0, b"\xff\xfb", "mp3", "audio/mpeg"),
    (0, b"\xff\xf3", "mp3", "audio/mpeg"),
    (0, b"\xff\xf2", "mp3", "audio/mpeg"),
    (0, b"\x1a\x45\xdf\xa3", "webm", "audio/webm"),
    (4, b"ftyp", "m4a", "audio/mp4"),
)


# verbose_json names the language ("english"); the proto, like our workers, uses ISO 639-1 ("en").
# Names not listed here pass through as they came.
_LANGUAGE_CODES = {
    name: code
    for code, name in (
        ("en", "english"), ("zh", "chinese"), ("de", "german"), ("es", "spanish"), ("ru", "russian"),
        ("ko", "korean"), ("fr", "french"), ("ja", "japanese"), ("pt", "portuguese"), ("tr", "turkish"),
        ("pl", "polish"), ("ca", "catalan"), ("nl", "dutch"), ("ar", "arabic"), ("sv", "swedish"),
        ("it", "italian"), ("id", "indonesian"), ("hi", "hindi"), ("fi", "finnish"), ("vi", "vietnamese"),
        ("he", "hebrew"), ("uk", "ukrainian"), ("el", "greek"), ("ms", "malay"), ("cs", "czech"),
        ("ro", "romanian"), ("da", "danish"), ("hu", "hungarian"), ("ta", "tamil"), ("no", "norwegian"),
        ("th", "thai"), ("ur", "urdu"), ("hr", "croatian"), ("bg", "bulgarian"), ("lt", "lithuanian"),
        ("cy", "welsh"), ("sk", "slovak"), ("fa", "persian"), ("lv", "latvian"), ("bn", "bengali"),
        ("sr", "serbian"), ("sl", "slovenian"), ("et", "estonian"), ("tl", "tagalog"), ("sw", "swahili"),
    )
}  # fmt: skip


def language_code(language: str) -> str:
    return _LANGUAGE_CODES.get(language.lower(), language)


def chat_messages(request: pb.ChatRequest) -> list[ChatCompletionMessageParam]:
    return [_message(index, message) for index, message in enumerate(request.messages)]


def _message(index: int, message: pb.Message) -> ChatCompletionMessageParam:
    if message.role == pb.ROLE_USER:
        user: ChatCompletionUserMessageParam = {"role": "user", "content": _user_content(message)}
        if message.name:
            user["name"] = message.name
        return user
    if message.role == pb.ROLE_SYSTEM:
        system: ChatCompletionSystemMessageParam = {"role": "system", "content": _text_only(index, message)}
        if message.name:
            system["name"] = message.name
        return system
    if message.role == pb.ROLE_ASSISTANT:
        text = _text_only(index, message)
        assistant: ChatCompletionAssistantMessageParam = {"role": "assistant"}
        # A turn that only called tools has no content: null, not "", as the API documents.
        assistant["content"] = text if text or not message.tool_calls else None
        if message.tool_calls:
            assistant["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments or "{}"},
                }
                for call in message.tool_calls
            ]
        if message.name:
            assistant["name"] = message.name
        return assistant
    if message.role == pb.ROLE_TOOL:
        tool: ChatCompletionToolMessageParam = {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": _text_only(index, message),
        }
        return tool
    raise ValueError(f"messages[{index}].role: {message.role} is not a role this API knows")


def _user_content(message: pb.Message) -> str | list[ChatCompletionContentPartParam]:
    # Plain text goes as a string: every OpenAI-compatible server reads that, not all read part lists.
    if not any(part.HasField("image") for part in message.content):
        return "".join(part.text for part in message.content)
    parts: list[ChatCompletionContentPartParam] = []
    for part in message.content:
        if part.HasField("image"):
            parts.append({"type": "image_url", "image_url": {"url": image_data_url(part.image)}})
        else:
            parts.append({"type": "text", "text": part.text})
    return parts


def _text_only(index: int, message: pb.Message) -> str:
    if any(part.HasField("image") for part in message.content):
        raise ValueError(f"messages[{index}]: only user messages may carry images")
    return "".join(part.text for part in message.content)


def audio_file(config: pb.TranscribeConfig, audio: Sequence[bytes]) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) to upload: raw PCM is wrapped as WAV, containers keep their bytes."""
    data = b"".join(audio)
    if config.encoding == pb.AUDIO_ENCODING_PCM_S16LE:
        # PCM without a stated rate is taken to be Whisper's native 16 kHz.
        return "audio.wav", pcm_to_wav(data, config.sample_rate_hz or SAMPLE_RATE_HZ), "audio/wav"
    for offset, magic, extension, mime in _AUDIO_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return f"audio.{extension}", data, mime
    # Unknown container: the provider's "unsupported format" answer is the right one for the caller.
    return "audio.bin", data, "application/octet-stream"


def pcm_to_wav(pcm: bytes, sample_rate_hz: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate_hz)
        out.writeframes(pcm)
    return buffer.getvalue()


def wav_duration(data: bytes) -> float:
    """Seconds of audio in a WAV file, or 0.0 when it is not one this can read."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate() or 1)
    except (wave.Error, EOFError):
        return 0.0


def plain_transcription_events(
    result: Transcription, config: pb.TranscribeConfig, duration: float
) -> list[pb.TranscribeResponse]:
    """Info and one segment from a plain `json` answer, which has the text and no timings."""
    if result.usage is not None and result.usage.type == "duration":
        duration = result.usage.seconds
    return [
        pb.TranscribeResponse(info=pb.TranscriptionInfo(language=config.language, duration_seconds=duration)),
        pb.TranscribeResponse(segment=pb.Segment(id=0, start=0.0, end=duration, text=result.text)),
    ]


def transcription_events(result: TranscriptionVerbose) -> list[pb.TranscribeResponse]:
    """Info first, then one Segment per segment with its words; Usage is the caller's to add."""
    events = [
        pb.TranscribeResponse(
            info=pb.TranscriptionInfo(
                language=language_code(result.language),
                # The API reports no confidence for the language it detected.
                language_probability=1.0 if result.language else 0.0,
                duration_seconds=result.duration,
            )
        )
    ]
    words = list(result.words or ())
    segments = result.segments
    if segments is None:
        # Some OpenAI-compatible servers send only the text: one segment covering the whole audio.
        events.append(
            pb.TranscribeResponse(
                segment=pb.Segment(
                    id=0, start=0.0, end=result.duration, text=result.text, words=_words(words)
                )
            )
        )
        return events
    for index, segment in enumerate(segments):
        # Words come as one list for the whole audio; each goes to the segment it starts in.
        last = index == len(segments) - 1
        mine = [w for w in words if segment.start <= w.start and (last or w.start < segment.end)]
        events.append(
            pb.TranscribeResponse(
                segment=pb.Segment(
                    id=segment.id,
                    start=segment.start,
                    end=segment.end,
                    text=segment.text,
                    words=_words(mine),
                    avg_logprob=segment.avg_logprob,
                    no_speech_prob=segment.no_speech_prob,
                )
            )
        )
    return events


def _words(words: Iterable[TranscriptionWord]) -> list[pb.Word]:
    # The API gives no per-word probability; 0 means "not reported", as in the proto's default.
    return [pb.Word(start=w.start, end=w.end, word=w.word) for w in words]
