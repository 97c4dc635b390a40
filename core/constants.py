"""Numbers router, worker and client must agree on."""

from __future__ import annotations

# PCM audio on the wire, and what Whisper decodes at: 16 kHz mono, 16-bit little-endian.
SAMPLE_RATE_HZ = 16_000

# gRPC message limit on every channel and server: embedding batches and long transcripts would pass
# gRPC's 4 MiB default, and a worker or client with a smaller limit than the router would refuse them.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

GRPC_MESSAGE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)
