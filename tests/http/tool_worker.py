"""An echo worker that also plays a tool-calling model, for the HTTP door's tests (a test double).

With tools in the request it calls the first one, its arguments in two fragments; with logprobs it gives
each word a log probability. It keeps every request it was sent, so tests can check the conversion.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from modelyard.v1 import inference_pb2 as pb

from tests.support.echo_worker import Context, EchoWorker

ARGUMENTS = {"city": "Paris", "unit": "celsius"}


@dataclass
class ToolWorker(EchoWorker):
    received: list[pb.ChatRequest] = field(default_factory=list)

    async def Chat(self, request: pb.ChatRequest, context: Context) -> AsyncIterator[pb.ChatResponse]:
        self.received.append(request)
        if not request.tools:
            async for response in super().Chat(request, context):
                if request.logprobs and response.HasField("delta"):
                    token = response.delta.text
                    response.delta.logprobs.append(
                        pb.TokenLogprob(
                            token=token,
                            logprob=-0.5,
                            top_logprobs=[pb.TopLogprob(token=token, logprob=-0.5)][: request.top_logprobs],
                        )
                    )
                yield response
            return
        text = json.dumps(ARGUMENTS)
        name = request.tools[0].name
        yield pb.ChatResponse(tool_call=pb.ToolCallDelta(index=0, id="call_1", name=name, arguments=text[:7]))
        yield pb.ChatResponse(tool_call=pb.ToolCallDelta(index=0, arguments=text[7:]))
        yield pb.ChatResponse(
            usage=pb.Usage(
                model=request.model,
                prompt_tokens=5,
                completion_tokens=9,
                finish_reason=pb.FINISH_REASON_TOOL_CALLS,
            )
        )
