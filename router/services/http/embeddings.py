"""POST /v1/embeddings: a string or an array of strings in; floats or base64 (little-endian float32, what
the openai Python SDK asks for by default) out."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from aiohttp import web
from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from router.pipeline import RequestPipeline
from router.services.http.call import call_of, json_body, within_deadline
from router.services.http.chat_response import modelyard_json
from router.services.http.fields import opt_int, opt_str, req_str
from router.services.http.routing_hints import request_id, routing_hints

_FORMATS = ("float", "base64")


class EmbeddingsHandler:
    def __init__(self, pipeline: RequestPipeline) -> None:
        self._pipeline = pipeline

    async def handle(self, http: web.Request) -> web.Response:
        call = call_of(http)
        body = await json_body(http)
        encoding = opt_str(body, "encoding_format") or "float"
        if encoding not in _FORMATS:
            raise InvalidArgument(f"encoding_format: expected float or base64, got {encoding!r}")
        if opt_int(body, "dimensions") is not None:
            raise InvalidArgument("dimensions: not supported; the model's own size is returned")
        request = pb.EmbedRequest(
            model=req_str(body, "model"),
            inputs=_inputs(body.get("input")),
            routing=routing_hints(http.headers, body),
            request_id=request_id(http.headers, body),
        )
        async with within_deadline(call):
            answer = await self._pipeline.embed(request, call)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(list(e.values), encoding)}
            for i, e in enumerate(answer.embeddings)
        ]
        usage = answer.usage
        payload = {
            "object": "list",
            "data": data,
            "model": usage.model or request.model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
            "modelyard": modelyard_json(usage),
        }
        return web.Response(body=json.dumps(payload, separators=(",", ":")), content_type="application/json")


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, list):
        raise InvalidArgument("input: token arrays are not supported; send text")
    raise InvalidArgument("input: expected a string or an array of strings")


def _encode(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
