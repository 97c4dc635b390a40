import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from modelyard.v1 import backend_pb2 as _backend_pb2
from modelyard.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BackendKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_KIND_UNSPECIFIED: _ClassVar[BackendKind]
    BACKEND_KIND_WORKER: _ClassVar[BackendKind]
    BACKEND_KIND_OPENAI: _ClassVar[BackendKind]
    BACKEND_KIND_OPENAI_COMPATIBLE: _ClassVar[BackendKind]
    BACKEND_KIND_DEEPSEEK: _ClassVar[BackendKind]
    BACKEND_KIND_GEMINI: _ClassVar[BackendKind]
    BACKEND_KIND_ANTHROPIC: _ClassVar[BackendKind]

class CircuitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_STATE_UNSPECIFIED: _ClassVar[CircuitState]
    CIRCUIT_STATE_CLOSED: _ClassVar[CircuitState]
    CIRCUIT_STATE_OPEN: _ClassVar[CircuitState]
    CIRCUIT_STATE_HALF_OPEN: _ClassVar[CircuitState]
BACKEND_KIND_UNSPECIFIED: BackendKind
BACKEND_KIND_WORKER: BackendKind
BACKEND_KIND_OPENAI: BackendKind
BACKEND_KIND_OPENAI_COMPATIBLE: BackendKind
BACKEND_KIND_DEEPSEEK: BackendKind
BACKEND_KIND_GEMINI: BackendKind
BACKEND_KIND_ANTHROPIC: BackendKind
CIRCUIT_STATE_UNSPECIFIED: CircuitState
CIRCUIT_STATE_CLOSED: CircuitState
CIRCUIT_STATE_OPEN: CircuitState
CIRCUIT_STATE_HALF_OPEN: CircuitState

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("id", "capabilities", "backends")
    ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    capabilities: _containers.RepeatedScalarFieldContainer[_inference_pb2.Capability]
    backends: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., capabilities: _Optional[_Iterable[_Union[_inference_pb2.Capability, str]]] = ..., backends: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackendStatus(_message.Message):
    __slots__ = ("id", "kind", "address", "models", "healthy", "draining", "load", "max_concurrency", "in_flight", "connected_for", "enabled", "priority", "circuit", "success_rate", "ttft", "latency", "requests", "failures", "last_error", "last_score", "score_components", "predicted_ttft")
    class ScoreComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FOR_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    TTFT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TTFT_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: BackendKind
    address: str
    models: _containers.RepeatedCompositeFieldContainer[_backend_pb2.ServedModel]
    healthy: bool
    draining: bool
    load: _backend_pb2.LoadReport
    max_concurrency: int
    in_flight: int
    connected_for: _duration_pb2.Duration
    enabled: bool
    priority: int
    circuit: CircuitState
    success_rate: float
    ttft: _duration_pb2.Duration
    latency: _duration_pb2.Duration
    requests: int
    failures: int
    last_error: str
    last_score: float
    score_components: _containers.ScalarMap[str, float]
    predicted_ttft: _duration_pb2.Duration
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[BackendKind, str]] = ..., address: _Optional[str] = ..., models: _Optional[_Iterable[_Union[_backend_pb2.ServedModel, _Mapping]]] = ..., healthy: _Optional[bool] = ..., draining: _Optional[bool] = ..., load: _Optional[_Union[_backend_pb2.LoadReport, _Mapping]] = ..., max_concurrency: _Optional[int] = ..., in_flight: _Optional[int] = ..., connected_for: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., enabled: _Optional[bool] = ..., priority: _Optional[int] = ..., circuit: _Optional[_Union[CircuitState, str]] = ..., success_rate: _Optional[float] = ..., ttft: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., requests: _Optional[int] = ..., failures: _Optional[int] = ..., last_error: _Optional[str] = ..., last_score: _Optional[float] = ..., score_components: _Optional[_Mapping[str, float]] = ..., predicted_ttft: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TenantQueue(_message.Message):
    __slots__ = ("tenant", "queued", "oldest_wait", "mean_wait", "dispatched", "refused", "weight")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    OLDEST_WAIT_FIELD_NUMBER: _ClassVar[int]
    MEAN_WAIT_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    queued: int
    oldest_wait: _duration_pb2.Duration
    mean_wait: _duration_pb2.Duration
    dispatched: int
    refused: int
    weight: float
    def __init__(self, tenant: _Optional[str] = ..., queued: _Optional[int] = ..., oldest_wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., mean_wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., dispatched: _Optional[int] = ..., refused: _Optional[int] = ..., weight: _Optional[float] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("router_id", "version", "uptime", "backends", "strategy", "weights", "redacted", "queues")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROUTER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    REDACTED_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    router_id: str
    version: str
    uptime: _duration_pb2.Duration
    backends: _containers.RepeatedCompositeFieldContainer[BackendStatus]
    strategy: _inference_pb2.Strategy
    weights: _containers.ScalarMap[str, float]
    redacted: bool
    queues: _containers.RepeatedCompositeFieldContainer[TenantQueue]
    def __init__(self, router_id: _Optional[str] = ..., version: _Optional[str] = ..., uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., backends: _Optional[_Iterable[_Union[BackendStatus, _Mapping]]] = ..., strategy: _Optional[_Union[_inference_pb2.Strategy, str]] = ..., weights: _Optional[_Mapping[str, float]] = ..., redacted: _Optional[bool] = ..., queues: _Optional[_Iterable[_Union[TenantQueue, _Mapping]]] = ...) -> None: ...
