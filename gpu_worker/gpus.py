"""GPU inventory and usage from NVML (nvidia-ml-py); an empty list on hosts without NVIDIA GPUs."""

from __future__ import annotations

import logging
from typing import Any

from modelyard.v1 import backend_pb2

logger = logging.getLogger(__name__)


class GpuMonitor:
    """Initialises NVML once; `snapshot()` is a few microsecond-scale driver calls per GPU."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(index) for index in range(count)]
            self._nvml = pynvml
        except Exception as error:  # no driver, no library, or no GPU: all mean "report none"
            logger.info("no NVIDIA GPU visible through NVML (%s); reporting none", error)

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def snapshot(self) -> list[backend_pb2.GpuInfo]:
        if self._nvml is None:
            return []
        gpus = []
        for index, handle in enumerate(self._handles):
            try:
                name = self._nvml.nvmlDeviceGetName(handle)
                memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                utilization = self._nvml.nvmlDeviceGetUtilizationRates(handle)
            except Exception as error:  # a GPU that fell off the bus should not stop load reports
                logger.warning("NVML could not read GPU %d: %s", index, error)
                continue
            gpus.append(
                backend_pb2.GpuInfo(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    memory_total_bytes=int(memory.total),
                    memory_used_bytes=int(memory.used),
                    utilization=float(utilization.gpu) / 100.0,
                )
            )
        return gpus

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception as error:
                logger.debug("nvmlShutdown failed: %s", error)
            self._nvml = None
