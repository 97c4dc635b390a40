from modelyard.v1 import inference_pb2 as _inference_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServedModel(_message.Message):
    __slots__ = ("id", "capabilities", "engine", "max_context_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    capabilities: _containers.RepeatedScalarFieldContainer[_inference_pb2.Capability]
    engine: str
    max_context_tokens: int
    def __init__(self, id: _Optional[str] = ..., capabilities: _Optional[_Iterable[_Union[_inference_pb2.Capability, str]]] = ..., engine: _Optional[str] = ..., max_context_tokens: _Optional[int] = ...) -> None: ...

class GpuInfo(_message.Message):
    __slots__ = ("index", "name", "memory_total_bytes", "memory_used_bytes", "utilization")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    memory_total_bytes: int
    memory_used_bytes: int
    utilization: float
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., memory_total_bytes: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., utilization: _Optional[float] = ...) -> None: ...

class LoadReport(_message.Message):
    __slots__ = ("running", "waiting", "kv_cache_usage", "tokens_per_second", "queued_audio_seconds", "gpus", "draining", "aborted_total")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    KV_CACHE_USAGE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    ABORTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    running: int
    waiting: int
    kv_cache_usage: float
    tokens_per_second: float
    queued_audio_seconds: float
    gpus: _containers.RepeatedCompositeFieldContainer[GpuInfo]
    draining: bool
    aborted_total: int
    def __init__(self, running: _Optional[int] = ..., waiting: _Optional[int] = ..., kv_cache_usage: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., queued_audio_seconds: _Optional[float] = ..., gpus: _Optional[_Iterable[_Union[GpuInfo, _Mapping]]] = ..., draining: _Optional[bool] = ..., aborted_total: _Optional[int] = ...) -> None: ...
