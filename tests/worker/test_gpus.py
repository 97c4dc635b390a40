from __future__ import annotations

import pytest

from gpu_worker.gpus import GpuMonitor


def test_snapshot_is_empty_or_well_formed() -> None:
    monitor = GpuMonitor()
    try:
        gpus = monitor.snapshot()
        assert bool(gpus) == monitor.available
        for gpu in gpus:
            assert gpu.memory_total_bytes >= gpu.memory_used_bytes
    finally:
        monitor.close()


@pytest.mark.gpu
def test_nvml_reports_every_gpu() -> None:
    monitor = GpuMonitor()
    if not monitor.available:
        pytest.skip("no NVIDIA GPU visible through NVML")
    try:
        import pynvml

        gpus = monitor.snapshot()
        assert len(gpus) == pynvml.nvmlDeviceGetCount()
        assert [gpu.index for gpu in gpus] == list(range(len(gpus)))
        for gpu in gpus:
            assert gpu.name
            assert gpu.memory_total_bytes > 0
            assert 0.0 <= gpu.utilization <= 1.0
    finally:
        monitor.close()


@pytest.mark.gpu
def test_engines_pick_cuda_on_a_gpu_host() -> None:
    monitor = GpuMonitor()
    available = monitor.available
    monitor.close()
    if not available:
        pytest.skip("no NVIDIA GPU visible through NVML")
    from gpu_worker.engines.vllm_setup import cuda_available

    assert cuda_available()
