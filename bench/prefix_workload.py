"""A seeded multi-turn chat workload: sessions of 4-8 turns behind a shared long system prompt.

Sessions start as a Poisson process. Each turn is sent when the previous answer is complete plus an
exponential think time, and carries the whole conversation so far (system prompt, every user turn and
every answer), as chat clients do. Text is made of seeded pseudo-words at 4 bytes a token, so the same
seed gives the same requests byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from modelyard.v1 import inference_pb2 as pb

BYTES_PER_TOKEN = 4  # "word " pseudo-words below are 4 bytes, one token each


@dataclass(frozen=True)
class WorkloadSettings:
    seconds: float = 240.0  # sessions start within this window
    session_rate: float = 1.0  # sessions per second, Poisson
    turns: tuple[int, int] = (4, 8)
    system_prompts: int = 2  # distinct apps, each with its own shared system prompt
    system_tokens: tuple[int, int] = (1000, 2000)
    user_tokens: tuple[int, int] = (50, 300)
    answer_tokens: tuple[int, int] = (100, 300)
    think_s: float = 4.0  # mean pause between an answer and the next turn
    seed: int = 16


@dataclass
class Session:
    id: int
    start_s: float
    system: str
    user_turns: list[str]
    answers: list[str]  # what the model answers at each turn (the simulated output)
    messages: list[pb.Message] = field(default_factory=list)

    def request(self, turn: int) -> pb.ChatRequest:
        """The request for `turn`: the whole conversation so far and the new user turn."""
        if turn == 0:
            self.messages = [_message(pb.ROLE_SYSTEM, self.system)]
        else:
            self.messages.append(_message(pb.ROLE_ASSISTANT, self.answers[turn - 1]))
        self.messages.append(_message(pb.ROLE_USER, self.user_turns[turn]))
        return pb.ChatRequest(model="sim-model", messages=list(self.messages))


def _message(role: pb.Role, text: str) -> pb.Message:
    return pb.Message(role=role, content=[pb.ContentPart(text=text)])


def _words(rng: random.Random, tokens: int) -> str:
    return "".join(f"{rng.randrange(1000):03d} " for _ in range(tokens))


def sessions(s: WorkloadSettings) -> list[Session]:
    rng = random.Random(s.seed)
    systems = [_words(rng, rng.randint(*s.system_tokens)) for _ in range(s.system_prompts)]
    out: list[Session] = []
    now = rng.expovariate(s.session_rate)
    while now < s.seconds:
        turns = rng.randint(*s.turns)
        out.append(
            Session(
                id=len(out),
                start_s=now,
                system=rng.choice(systems),
                user_turns=[_words(rng, rng.randint(*s.user_tokens)) for _ in range(turns)],
                answers=[_words(rng, rng.randint(*s.answer_tokens)) for _ in range(turns)],
            )
        )
        now += rng.expovariate(s.session_rate)
    return out


def think_time(rng: random.Random, s: WorkloadSettings) -> float:
    return rng.expovariate(1.0 / s.think_s)
