import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from modelyard.v1 import inference_pb2 as _inference_pb2
from modelyard.v1 import router_pb2 as _router_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpdateBackendRequest(_message.Message):
    __slots__ = ("backend", "enabled", "priority")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    backend: str
    enabled: bool
    priority: int
    def __init__(self, backend: _Optional[str] = ..., enabled: _Optional[bool] = ..., priority: _Optional[int] = ...) -> None: ...

class UpdateBackendResponse(_message.Message):
    __slots__ = ("backend",)
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    backend: _router_pb2.BackendStatus
    def __init__(self, backend: _Optional[_Union[_router_pb2.BackendStatus, _Mapping]] = ...) -> None: ...

class SetStrategyRequest(_message.Message):
    __slots__ = ("strategy", "weights", "reset_weights")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    RESET_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    strategy: _inference_pb2.Strategy
    weights: _containers.ScalarMap[str, float]
    reset_weights: bool
    def __init__(self, strategy: _Optional[_Union[_inference_pb2.Strategy, str]] = ..., weights: _Optional[_Mapping[str, float]] = ..., reset_weights: _Optional[bool] = ...) -> None: ...

class SetStrategyResponse(_message.Message):
    __slots__ = ("strategy", "weights")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    strategy: _inference_pb2.Strategy
    weights: _containers.ScalarMap[str, float]
    def __init__(self, strategy: _Optional[_Union[_inference_pb2.Strategy, str]] = ..., weights: _Optional[_Mapping[str, float]] = ...) -> None: ...

class CompareCostRequest(_message.Message):
    __slots__ = ("chat",)
    CHAT_FIELD_NUMBER: _ClassVar[int]
    chat: _inference_pb2.ChatRequest
    def __init__(self, chat: _Optional[_Union[_inference_pb2.ChatRequest, _Mapping]] = ...) -> None: ...

class CostEstimate(_message.Message):
    __slots__ = ("backend", "model", "prompt_tokens", "completion_tokens", "cost_usd", "available")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    backend: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    available: bool
    def __init__(self, backend: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., available: _Optional[bool] = ...) -> None: ...

class CompareCostResponse(_message.Message):
    __slots__ = ("estimates",)
    ESTIMATES_FIELD_NUMBER: _ClassVar[int]
    estimates: _containers.RepeatedCompositeFieldContainer[CostEstimate]
    def __init__(self, estimates: _Optional[_Iterable[_Union[CostEstimate, _Mapping]]] = ...) -> None: ...

class DrainWorkerRequest(_message.Message):
    __slots__ = ("worker_id", "reason")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    reason: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DrainWorkerResponse(_message.Message):
    __slots__ = ("draining",)
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    draining: bool
    def __init__(self, draining: _Optional[bool] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("days", "tenant", "limit")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    days: int
    tenant: str
    limit: int
    def __init__(self, days: _Optional[int] = ..., tenant: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("time", "router_id", "tenant", "method", "arguments", "outcome", "message")
    TIME_FIELD_NUMBER: _ClassVar[int]
    ROUTER_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    router_id: str
    tenant: str
    method: str
    arguments: str
    outcome: str
    message: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., router_id: _Optional[str] = ..., tenant: _Optional[str] = ..., method: _Optional[str] = ..., arguments: _Optional[str] = ..., outcome: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ...) -> None: ...
