"""Prefix keys: chained hashes of fixed-size blocks of a conversation, the unit of prefix-aware routing.

What is hashed, and why:
- The message sequence, not the model's chat template: the router has neither tokenizer nor template,
  and both only ever append to what came before, so a conversation's next turn shares every full block
  of the previous turn's rendering. Each message renders as a record separator, its role number, a unit
  separator and its parts (text as UTF-8; an image as a digest of its bytes or URL), so "a" + "bc" and
  "ab" + "c" in two messages never render alike.
- Fixed-size blocks of that rendering (default 256 bytes, about 64 tokens), only full ones, like vLLM's
  prefix cache, which also caches only full blocks: a partial last block says nothing the next turn keeps.
- Each key hashes the previous key with its block (blake2b, 64 bits), so key i stands for the whole
  prefix up to the end of block i. Matching a request against a worker is then a walk from the first
  key to the first miss, and two conversations that differ early share no keys after that point.
The same function runs on the router (to score) and on the worker (to translate its engine's cache
events into keys the router knows), so neither needs the other's tokenizer.
"""

from __future__ import annotations

import hashlib

from modelyard.v1 import inference_pb2 as pb

DEFAULT_BLOCK_BYTES = 256
_MESSAGE = b"\x1e"
_PART = b"\x1f"


def render(request: pb.ChatRequest) -> bytes:
    """The canonical bytes of the request's messages; appending a message only appends bytes."""
    out = bytearray()
    for message in request.messages:
        out += _MESSAGE + str(int(message.role)).encode()
        for part in message.content:
            out += _PART
            if part.WhichOneof("part") == "image":
                image = part.image
                source = image.data if image.WhichOneof("source") == "data" else image.url.encode()
                out += b"image:" + hashlib.blake2b(source, digest_size=16).digest()
            else:
                out += part.text.encode()
    return bytes(out)


def block_keys(rendered: bytes, block_bytes: int = DEFAULT_BLOCK_BYTES, salt: str = "") -> list[int]:
    """One key per full block: key i covers rendered[: (i + 1) * block_bytes]. A salt (the request's
    cache_salt) starts the chain, so requests with different salts share no key, as their caches share no block."""
    if block_bytes < 1:
        raise ValueError("block_bytes must be at least 1")
    keys: list[int] = []
    previous = hashlib.blake2b(salt.encode(), digest_size=8).digest() if salt else b""
    for end in range(block_bytes, len(rendered) + 1, block_bytes):
        digest = hashlib.blake2b(previous + rendered[end - block_bytes : end], digest_size=8).digest()
        keys.append(int.from_bytes(digest, "big"))
        previous = digest
    return keys


def prefix_keys(request: pb.ChatRequest, block_bytes: int = DEFAULT_BLOCK_BYTES) -> list[int]:
    return block_keys(render(request), block_bytes, request.cache_salt)
