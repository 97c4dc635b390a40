"""Chat events that are already here, joined: adjacent text (with its logprobs) and adjacent reasoning.

A backend that reads several upstream chunks at once (they queued up while the router was busy) hands
them on as one message rather than one each: the same text in the same order, so the caller's work and
the router's writes scale with how often it can be written to, not with the upstream's chunk count.
Nothing waits for more; tool-call fragments, whose boundaries carry ids and names, pass as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.v1 import inference_pb2 as pb


def joined(events: Sequence[pb.ChatResponse]) -> Sequence[pb.ChatResponse]:
    if len(events) < 2:
        return events
    out: list[pb.ChatResponse] = [events[0]]
    for event in events[1:]:
        last = out[-1]
        kind = event.WhichOneof("event")
        if kind == "delta" and last.WhichOneof("event") == "delta":
            last.delta.text += event.delta.text
            last.delta.logprobs.extend(event.delta.logprobs)
        elif kind == "reasoning" and last.WhichOneof("event") == "reasoning" and not last.reasoning.signature:
            last.reasoning.text += event.reasoning.text
            last.reasoning.signature = event.reasoning.signature  # a signature closes its block
        else:
            out.append(event)
    return out
