"""JSON on the HTTP hot paths (the OpenAI-compatible door, the OpenAI-style backend's wire), on msgspec.

Measured in the router's profile at c=1 (bench/http_door.py): the standard library's json was about a tenth of
the router's CPU on a 64-chunk answer (an encode per answer or chunk, a decode per body and per upstream SSE
event); msgspec's encoder is 10-20x faster on these payloads and its decoder about 3x. What differs from `json`:
errors are `msgspec.DecodeError`, a ValueError, as json's are; input must be UTF-8 (as HTTP JSON is); NaN and
Infinity are not JSON and are refused on input, written as null on output; output is compact UTF-8.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (separators "," and ":", non-ASCII as is)."""
    return _encoder.encode(value)


def loads(data: bytes | str) -> Any:
    """ValueError on what is not JSON; RecursionError on JSON nested deeper than the stack allows."""
    return _decoder.decode(data)
