"""Python values <-> the API's enums and well-known types, one mapping shared by router, worker and client.

Inside the code base enums travel as their short lower-case names ("stop", "tool_calls", "half_open"),
the words the config file, logs and the CLI use; only the wire carries the proto enum.
"""

from __future__ import annotations

from typing import cast

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2


def _prefix(enum: EnumTypeWrapper) -> str:
    return enum.Name(0).removesuffix("UNSPECIFIED")


def enum_value(enum: EnumTypeWrapper, name: str) -> int:
    """ "tool_calls" -> FINISH_REASON_TOOL_CALLS; "" -> the UNSPECIFIED zero. ValueError when unknown."""
    if not name:
        return 0
    return int(enum.Value(_prefix(enum) + name.upper()))


def enum_name(enum: EnumTypeWrapper, value: int) -> str:
    """FINISH_REASON_TOOL_CALLS -> "tool_calls"; the zero value and unknown numbers -> ""."""
    if not value or value not in enum.values():
        return ""
    return str(enum.Name(value)).removeprefix(_prefix(enum)).lower()


def enum_names(enum: EnumTypeWrapper) -> list[str]:
    """Every short name but the zero value's, in declaration order."""
    return [enum_name(enum, v) for v in enum.values() if v]


def finish_reason(name: str) -> pb.FinishReason:
    return cast(pb.FinishReason, enum_value(pb.FinishReason, name))


def strategy(name: str) -> pb.Strategy:
    return cast(pb.Strategy, enum_value(pb.Strategy, name))


def backend_kind(name: str) -> router_pb2.BackendKind:
    """A kind the API does not list (a test double, a newer provider) shows as UNSPECIFIED."""
    try:
        return cast(router_pb2.BackendKind, enum_value(router_pb2.BackendKind, name))
    except ValueError:
        return router_pb2.BACKEND_KIND_UNSPECIFIED


def circuit_state(name: str) -> router_pb2.CircuitState:
    return cast(router_pb2.CircuitState, enum_value(router_pb2.CircuitState, name))


def duration_ms(ms: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(ms * 1e6))
    return d


def ms_of(d: duration_pb2.Duration) -> float:
    return d.seconds * 1000 + d.nanos / 1e6


def duration_s(seconds: float) -> duration_pb2.Duration:
    return duration_ms(seconds * 1000)


def timestamp_s(unix_seconds: float) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromNanoseconds(round(unix_seconds * 1e9))
    return t


def unix_s(t: timestamp_pb2.Timestamp) -> float:
    return t.seconds + t.nanos / 1e9
