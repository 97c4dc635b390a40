"""`python -m tests.setup.up_worker --router ADDR`: a worker double serving what `modelyard up` serves by default.

It registers the default models under their real ids, each with its own capability (chat with tool calls, 384-wide
embeddings, transcription), so the README's snippets run unchanged against `up` without starting an engine.
Stands in for `python -m gpu_worker` as `up`'s child process, until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2

from tests.http.tool_worker import ToolWorker
from tests.support.echo_worker import Context

CHAT, EMBED, WHISPER = "smollm2-135m-instruct", "all-minilm-l6-v2", "whisper-tiny.en"
CAPABILITIES = {CHAT: pb.CAPABILITY_CHAT, EMBED: pb.CAPABILITY_EMBED, WHISPER: pb.CAPABILITY_TRANSCRIBE}
DIMENSIONS = 384


@dataclass
class UpWorker(ToolWorker):
    def hello(self) -> worker_pb2.WorkerHello:
        hello = super().hello()
        del hello.models[:]
        hello.models.extend(
            backend_pb2.ServedModel(id=model, capabilities=[capability], engine="double")
            for model, capability in CAPABILITIES.items()
        )
        return hello

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        vectors = [
            pb.Embedding(values=[float(len(text))] + [0.0] * (DIMENSIONS - 1)) for text in request.inputs
        ]
        return pb.EmbedResponse(
            embeddings=vectors, usage=pb.Usage(model=request.model, prompt_tokens=len(vectors))
        )

    async def Transcribe(
        self, request_iterator: AsyncIterator[pb.TranscribeRequest], context: Context
    ) -> AsyncIterator[pb.TranscribeResponse]:
        config = (await anext(request_iterator)).config
        audio = sum([len(message.audio) async for message in request_iterator])
        seconds = audio / (2 * (config.sample_rate_hz or 16000))
        yield pb.TranscribeResponse(info=pb.TranscriptionInfo(language="en", duration_seconds=seconds))
        yield pb.TranscribeResponse(
            segment=pb.Segment(id=0, start=0.0, end=seconds, text=" the quick brown fox")
        )
        yield pb.TranscribeResponse(usage=pb.Usage(model=config.model, audio_seconds=seconds))


async def run(router: str) -> None:
    worker = UpWorker("local-worker", models=tuple(CAPABILITIES))
    await worker.start()
    await worker.register(router)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--router", required=True)
    asyncio.run(run(parser.parse_args().router))


if __name__ == "__main__":
    main()
