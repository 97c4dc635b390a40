"""A test double of the OpenAI API speaking its real wire format: chat completions (streamed as SSE
chunks, usage chunk, `[DONE]`; or whole), embeddings, transcriptions (multipart in, verbose_json or
json out) and the model list. It answers every chat with `reply`, one word per chunk. Given tools (and a
tool_choice other than "none") it calls tools instead, streaming each call as the API does: a first fragment
with index, id and name, then the arguments' JSON text in pieces, and finish_reason "tool_calls". With
`reasoning` it streams DeepSeek-style `reasoning_content` before the answer; with logprobs, each text chunk
carries its token's logprob and top_logprobs.

    async with FakeOpenAI(api_key="sk-test") as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import time
import wave
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tests.support.fake_http import FakeServer, Fault


class FakeOpenAI(FakeServer):
    def __init__(
        self,
        api_key: str = "sk-test-openai",
        *,
        models: Sequence[str] = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "whisper-1"),
        reply: str = "Hello from the fake model",
        prompt_tokens: int = 17,
        transcript: Sequence[str] = ("Hello there.", "General Kenobi."),
        language: str = "english",
        include_usage: bool = True,
        tool_arguments: str = '{"city": "Paris", "unit": "celsius"}',
        calls_per_answer: int = 1,
        reasoning: str = "",
    ) -> None:
        super().__init__(api_key)
        self.models = list(models)
        self.reply = reply
        self.prompt_tokens = prompt_tokens
        self.transcript = list(transcript)
        self.language = language
        self.include_usage = include_usage  # False: behave like a server that ignores stream_options
        self.tool_arguments = tool_arguments
        self.calls_per_answer = calls_per_answer  # with parallel_tool_calls allowed and as many tools
        self.reasoning = reasoning
        self.whole_delay_s = 0.0  # a whole answer takes this long, as a long one does upstream

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self._chat),
            web.post("/v1/embeddings", self._embeddings),
            web.post("/v1/audio/transcriptions", self._transcriptions),
            web.get("/v1/models", self._models),
        ]

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def unauthorized(self, request: web.Request) -> web.Response:
        # Like the real API, quote the rejected key back, so tests can prove the router never repeats it.
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return _error(401, f"Incorrect API key provided: {presented}.", "invalid_api_key")

    def error_response(self, status: int, fault: Fault) -> web.Response:
        response = _error(status, fault.message, fault.code)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response

    def error_event(self, fault: Fault) -> bytes:
        body = {"error": {"message": fault.message, "type": "server_error", "code": fault.code}}
        return f"data: {json.dumps(body)}\n\n".encode()

    def malformed_frame(self) -> bytes:
        return b'data: {"id": "chatcmpl-x", "choices": [{"delta": {"content": "oo\n\n'

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded, fault, early = await self.begin(request)
        if early is not None:
            return early
        body = recorded.json
        model = body["model"]
        if model not in self.models:
            return _error(404, f"The model `{model}` does not exist.", "model_not_found")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        words = _pieces(self.reply)
        finish = "stop"
        if limit is not None and limit < len(words):
            words, finish = words[:limit], "length"
        usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": self.prompt_tokens + len(words),
        }
        if not body.get("stream"):
            await asyncio.sleep(self.whole_delay_s)
            return self._whole(request, body, model, words, finish, usage, fault)
        calls = self._tools_to_call(body)
        chunks = [_chunk(model, {"role": "assistant", "content": "" if not calls else None}, None)]
        if self.reasoning:
            chunks += [_chunk(model, {"reasoning_content": p}, None) for p in _pieces(self.reasoning)]
        if calls:
            chunks += self._tool_call_chunks(model, calls)
            finish = "tool_calls"
        else:
            top = body.get("top_logprobs") or 0
            chunks += [
                _chunk(model, {"content": word}, None, _logprobs(word, top) if body.get("logprobs") else None)
                for word in words
            ]
        chunks.append(_chunk(model, {}, finish))
        if self.include_usage and (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(_envelope("chat.completion.chunk", model) | {"choices": [], "usage": usage})
        frames = [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]
        frames.append(b"data: [DONE]\n\n")
        return await self.stream(request, frames, fault)

    def _whole(
        self,
        request: web.Request,
        body: dict[str, Any],
        model: str,
        words: list[str],
        finish: str,
        usage: dict[str, int],
        fault: Fault | None,
    ) -> web.Response:
        """The answer as one chat.completion object: what the stream's chunks add up to."""
        if fault is not None and fault.malformed_after is not None:
            return web.Response(
                body=b'{"id": "chatcmpl-x", "choices": [{"mess', content_type="application/json"
            )
        if fault is not None and fault.cut_after is not None:  # the connection drops before the answer
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fault is not None and fault.error_event_after is not None:  # an error in a 200 answer
            error = {"message": fault.message, "type": "server_error", "code": fault.code}
            return web.json_response({"error": error})
        calls = self._tools_to_call(body)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        logprobs = None
        if calls:
            finish = "tool_calls"
            message["tool_calls"] = [
                {
                    "id": f"call_{index}_{name}",
                    "type": "function",
                    "function": {"name": name, "arguments": self.tool_arguments},
                }
                for index, name in enumerate(calls)
            ]
        else:
            message["content"] = "".join(words)
            if body.get("logprobs"):
                top = body.get("top_logprobs") or 0
                logprobs = {"content": [_logprobs(w, top)["content"][0] for w in words], "refusal": None}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs}
        answer = _envelope("chat.completion", model) | {"choices": [choice]}
        if self.include_usage:  # False: a server that reports no usage at all
            answer["usage"] = usage
        return web.json_response(answer)

    def _tools_to_call(self, body: dict[str, Any]) -> list[str]:
        tools = [t["function"]["name"] for t in body.get("tools") or ()]
        choice = body.get("tool_choice", "auto")
        if not tools or choice == "none":
            return []
        if isinstance(choice, dict):
            return [choice["function"]["name"]]
        count = self.calls_per_answer if body.get("parallel_tool_calls", True) else 1
        return tools[:count]

    def _tool_call_chunks(self, model: str, names: list[str]) -> list[dict[str, Any]]:
        chunks = []
        for index, name in enumerate(names):
            start = {"index": index, "id": f"call_{index}_{name}", "type": "function"}
            chunks.append(
                _chunk(model, {"tool_calls": [start | {"function": {"name": name, "arguments": ""}}]}, None)
            )
            text = self.tool_arguments
            for at in range(0, len(text), 7):  # the real API splits arguments at arbitrary points
                piece = {"index": index, "function": {"arguments": text[at : at + 7]}}
                chunks.append(_chunk(model, {"tool_calls": [piece]}, None))
        return chunks

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        recorded, _, early = await self.begin(request)
        if early is not None:
            return early
        body = recorded.json
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = []
        for index, text in enumerate(inputs):
            vector = embedding_for(text)
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(text.split()) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        recorded, _, early = await self.begin(request)
        if early is not None:
            return early
        _, audio, _ = recorded.files["file"]
        duration = _wav_seconds(audio) or 3.0
        text = " ".join(self.transcript)
        if recorded.form.get("response_format", "json") == "json":
            usage = {"type": "tokens", "input_tokens": 20, "output_tokens": 5, "total_tokens": 25}
            return web.json_response({"text": text, "usage": usage})
        step = duration / max(1, len(self.transcript))
        segments = [
            {
                "id": i,
                "seek": 0,
                "start": i * step,
                "end": (i + 1) * step,
                "text": piece,
                "tokens": [1, 2, 3],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.1,
                "no_speech_prob": 0.01,
            }
            for i, piece in enumerate(self.transcript)
        ]
        answer: dict[str, Any] = {
            "task": "transcribe",
            "language": self.language,
            "duration": duration,
            "text": text,
            "segments": segments,
            "usage": {"type": "duration", "seconds": round(duration)},
        }
        if "word" in recorded.form.get("timestamp_granularities[]", ""):
            answer["words"] = [
                {"word": word, "start": i * step + j * 0.1, "end": i * step + j * 0.1 + 0.1}
                for i, piece in enumerate(self.transcript)
                for j, word in enumerate(piece.split())
            ]
        return web.json_response(answer)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, _, early = await self.begin(request)
        if early is not None:
            return early
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})


def embedding_for(text: str) -> list[float]:
    """A fixed small vector per text, so tests can check order and values."""
    return [float(len(text)), float(sum(map(ord, text)) % 97), 0.5]


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == len(words) - 1 else word + " " for i, word in enumerate(words)]


def _envelope(kind: str, model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": kind, "created": int(time.time()), "model": model}


def _chunk(
    model: str, delta: dict[str, Any], finish: str | None, logprobs: dict[str, Any] | None = None
) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
    return _envelope("chat.completion.chunk", model) | {"choices": [choice]}


def _logprobs(word: str, top: int) -> dict[str, Any]:
    """A made-up but well-formed distribution: the chosen token first, then weaker alternatives."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    alternatives = [entry(word, -0.25)] + [entry(f"alt{k}", -1.0 - k) for k in range(1, top)]
    return {"content": [entry(word, -0.25) | {"top_logprobs": alternatives[:top]}], "refusal": None}


def _error(status: int, message: str, code: str | None) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def _wav_seconds(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate())
    except (wave.Error, EOFError):
        return 0.0
