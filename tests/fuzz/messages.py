"""Hypothesis strategies for arbitrary protobuf messages, read from their descriptors.

Every field may be set or not, with any value its wire type allows: unknown enum numbers, NaN and
infinities, huge integers, any Unicode, nested messages to a bounded depth, repeated fields and maps.
The result is the serialized bytes, as a hostile client would send them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor as d
from google.protobuf import message_factory
from hypothesis import strategies as st

_INT32 = st.integers(-(2**31), 2**31 - 1)
_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    d.FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    d.FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
    d.FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    d.FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
    d.FieldDescriptor.TYPE_INT32: _INT32,
    d.FieldDescriptor.TYPE_SINT32: _INT32,
    d.FieldDescriptor.TYPE_SFIXED32: _INT32,
    d.FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    d.FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    d.FieldDescriptor.TYPE_BOOL: st.booleans(),
    # Short strings mostly, sometimes long: sizes are where limits live.
    d.FieldDescriptor.TYPE_STRING: st.one_of(st.text(max_size=20), st.text(max_size=2000)),
    d.FieldDescriptor.TYPE_BYTES: st.binary(max_size=300),
    d.FieldDescriptor.TYPE_ENUM: _INT32,  # numbers the enum does not name included
}
MAX_DEPTH = 4
MAX_REPEATED = 4
# Often a model the router serves, so that requests get past routing into relay, accounting and the worker.
_MODELS = st.one_of(st.sampled_from(["echo", "auto"]), _SCALARS[d.FieldDescriptor.TYPE_STRING])


def _value(field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == d.FieldDescriptor.TYPE_ENUM:  # mostly named values, sometimes any number
        assert field.enum_type is not None
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), _INT32)
    if field.type == d.FieldDescriptor.TYPE_STRING and field.name == "model":
        return _MODELS
    return _SCALARS[field.type]


def message_bytes(descriptor: d.Descriptor) -> st.SearchStrategy[bytes]:
    return st.builds(lambda message: message.SerializeToString(), _message(descriptor, MAX_DEPTH))


@st.composite
def _message(draw: st.DrawFn, descriptor: d.Descriptor, depth: int) -> Any:
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.type == d.FieldDescriptor.TYPE_MESSAGE:
            if depth <= 0:
                continue
            nested = field.message_type
            assert nested is not None
            if field.is_repeated and nested.GetOptions().map_entry:
                _fill_map(draw, message, field, depth)
            elif field.is_repeated:
                for _ in range(draw(st.integers(0, MAX_REPEATED))):
                    getattr(message, field.name).add().CopyFrom(draw(_message(nested, depth - 1)))
            else:
                getattr(message, field.name).CopyFrom(draw(_message(nested, depth - 1)))
        elif field.is_repeated:
            getattr(message, field.name).extend(draw(st.lists(_value(field), max_size=MAX_REPEATED)))
        else:
            setattr(message, field.name, draw(_value(field)))
    return message


def _fill_map(draw: st.DrawFn, message: Any, field: d.FieldDescriptor, depth: int) -> None:
    entry = field.message_type
    assert entry is not None
    key_field = entry.fields_by_name["key"]
    value_field = entry.fields_by_name["value"]
    target = getattr(message, field.name)
    for _ in range(draw(st.integers(0, MAX_REPEATED))):
        key = draw(_value(key_field))
        if value_field.type == d.FieldDescriptor.TYPE_MESSAGE:
            assert value_field.message_type is not None
            target[key].CopyFrom(draw(_message(value_field.message_type, depth - 1)))
        else:
            target[key] = draw(_value(value_field))


_WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=200)


@st.composite
def plausible_chat(draw: st.DrawFn) -> bytes:
    """A chat that passes validation, with awkward content and sampling: it reaches routing, the budget,
    the relay to the echo worker, the cache and the ledger."""
    from modelyard.v1 import inference_pb2 as pb

    roles = st.sampled_from([pb.ROLE_SYSTEM, pb.ROLE_USER, pb.ROLE_ASSISTANT])
    messages = [
        pb.Message(
            role=draw(roles),
            content=[pb.ContentPart(text=text) for text in draw(st.lists(_WORDS, min_size=1, max_size=3))],
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    messages[-1].role = pb.ROLE_USER
    request = pb.ChatRequest(model=draw(st.sampled_from(["echo", "auto"])), messages=messages)
    if draw(st.booleans()):
        request.sampling.temperature = draw(st.floats(0.0, 2.0))
    if draw(st.booleans()):
        request.sampling.max_tokens = draw(st.integers(1, 40_000))
    if draw(st.booleans()):
        request.sampling.stop.extend(
            draw(st.lists(_WORDS.filter(lambda s: len(s.encode()) <= 256), max_size=3))
        )
    if draw(st.booleans()):
        request.request_id = draw(
            st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40)
        )
    return request.SerializeToString()


@st.composite
def plausible_embed(draw: st.DrawFn) -> bytes:
    from modelyard.v1 import inference_pb2 as pb

    return pb.EmbedRequest(
        model="echo", inputs=draw(st.lists(_WORDS, min_size=1, max_size=5))
    ).SerializeToString()
