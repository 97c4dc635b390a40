"""The one-token text every bench upstream streams, and how a client counts tokens in what arrives.

A router may send several deltas that queued up behind a slow reader as one message (the same text, in
order), so clients count the upstream's chunks by their text, not by the messages that carried them.
"""

TOKEN = "tok "


def tokens_in(text: str) -> int:
    return len(text) // len(TOKEN)
