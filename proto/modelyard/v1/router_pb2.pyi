from modelyard.v1 import inference_pb2 as _inference_pb2
from modelyard.v1 import worker_pb2 as _worker_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("id", "kind", "address", "models", "healthy", "draining", "load", "max_concurrency", "in_flight", "connected_seconds", "enabled", "priority", "circuit", "success_rate", "ttft_ms", "latency_ms", "requests", "failures", "last_error", "last_score", "score_components")
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
    CONNECTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    address: str
    models: _containers.RepeatedCompositeFieldContainer[_worker_pb2.ServedModel]
    healthy: bool
    draining: bool
    load: _worker_pb2.LoadReport
    max_concurrency: int
    in_flight: int
    connected_seconds: float
    enabled: bool
    priority: int
    circuit: str
    success_rate: float
    ttft_ms: float
    latency_ms: float
    requests: int
    failures: int
    last_error: str
    last_score: float
    score_components: _containers.ScalarMap[str, float]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., address: _Optional[str] = ..., models: _Optional[_Iterable[_Union[_worker_pb2.ServedModel, _Mapping]]] = ..., healthy: _Optional[bool] = ..., draining: _Optional[bool] = ..., load: _Optional[_Union[_worker_pb2.LoadReport, _Mapping]] = ..., max_concurrency: _Optional[int] = ..., in_flight: _Optional[int] = ..., connected_seconds: _Optional[float] = ..., enabled: _Optional[bool] = ..., priority: _Optional[int] = ..., circuit: _Optional[str] = ..., success_rate: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., latency_ms: _Optional[float] = ..., requests: _Optional[int] = ..., failures: _Optional[int] = ..., last_error: _Optional[str] = ..., last_score: _Optional[float] = ..., score_components: _Optional[_Mapping[str, float]] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("router_id", "version", "uptime_seconds", "backends", "strategy", "weights")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROUTER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    router_id: str
    version: str
    uptime_seconds: float
    backends: _containers.RepeatedCompositeFieldContainer[BackendStatus]
    strategy: str
    weights: _containers.ScalarMap[str, float]
    def __init__(self, router_id: _Optional[str] = ..., version: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., backends: _Optional[_Iterable[_Union[BackendStatus, _Mapping]]] = ..., strategy: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ...) -> None: ...
