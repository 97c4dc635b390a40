"""What `modelyard up` shows of its worker's output, fed lines a real first start printed (vLLM CPU build)."""

from __future__ import annotations

import io

from router.up_output import TAIL_LINES, WorkerOutput

FIRST_START = """\
2026-12-03 12:40:12,542 WARNING gpu_worker.engine_factory: chat is served by tiny-random-llama, RANDOM weights
2026-12-03 12:40:39,317 INFO vllm.triton_utils.importing: Triton not installed or not compatible
2026-12-03 12:40:44,786 INFO gpu_worker.engines.vllm_setup: starting vLLM (generate) for tiny-random-llama
(MainProcess pid=16014) WARNING 12-03 12:40:44 [arg_utils.py:1945] The global random seed is set to 0.
(MainProcess pid=16014) INFO 12-03 12:40:44 [model.py:733] Resolved architecture: LlamaForCausalLM
(EngineCore pid=16804) INFO 12-03 12:41:27 [core.py:133] Initializing a V1 LLM engine (v0.32.0) with config: ...
/venv/lib/python3.11/site-packages/vllm/triton_utils/dispatcher.py:138: FutureWarning: `reduce_op` is deprecated
  if hasattr(value, "__dict__"):
W1203 12:41:28.879000 16804 torch/_library/triton.py:53] Triton not available, find_triton_kernels = []
[W1203 12:41:31.944144681 utils.cpp:68] Warning: NUMA binding: Using MEMBIND policy for memory allocation
Loading safetensors checkpoint shards: 100% Completed | 1/1 [00:00<00:00,  1.89it/s]
[2026-12-03 12:42:39.430] [ctranslate2] [thread 16014] [warning] The compute type inferred is float16
2026-12-03 12:42:39,617 INFO gpu_worker.gpus: no NVIDIA GPU visible through NVML; reporting none
2026-12-03 12:42:39,635 INFO gpu_worker.registration: registered with router vm at 127.0.0.1:32813
modelyard-worker ready address=127.0.0.1:40000 worker_id=vm-16014 models=tiny-random-llama
"""

OURS = [line for line in FIRST_START.splitlines() if " gpu_worker." in line]


def feed(output: WorkerOutput, text: str) -> None:
    for line in text.splitlines(keepends=True):
        output.line(line)


def test_a_first_start_shows_only_modelyards_own_lines() -> None:
    sink = io.StringIO()
    feed(WorkerOutput(sink), FIRST_START)
    assert sink.getvalue().splitlines() == OURS


def test_verbose_shows_everything() -> None:
    sink = io.StringIO()
    feed(WorkerOutput(sink, verbose=True), FIRST_START)
    assert sink.getvalue() == FIRST_START


def test_errors_from_any_library_are_shown_with_their_traceback() -> None:
    sink = io.StringIO()
    feed(
        WorkerOutput(sink),
        "(EngineCore pid=7) ERROR 12-03 12:41:27 [core.py:9] EngineCore failed to start.\n"
        "Traceback (most recent call last):\n"
        '  File "core.py", line 9, in run\n'
        "RuntimeError: not enough memory\n"
        "(EngineCore pid=7) INFO 12-03 12:41:28 [core.py:10] shutting down\n"
        "gpu_worker: --listen 0.0.0.0:50061 needs a worker token or mutual TLS\n",
    )
    assert sink.getvalue().splitlines() == [
        "(EngineCore pid=7) ERROR 12-03 12:41:27 [core.py:9] EngineCore failed to start.",
        "Traceback (most recent call last):",
        '  File "core.py", line 9, in run',
        "RuntimeError: not enough memory",
        "gpu_worker: --listen 0.0.0.0:50061 needs a worker token or mutual TLS",
    ]


def test_what_was_hidden_is_shown_when_the_worker_fails() -> None:
    sink = io.StringIO()
    output = WorkerOutput(sink)
    feed(output, FIRST_START)
    feed(output, "".join(f"noise {i}\n" for i in range(TAIL_LINES + 5)))
    output.show_hidden()
    shown = sink.getvalue().splitlines()
    assert shown[len(OURS)] == "the worker's last output (--verbose shows all of it):"
    assert shown[len(OURS) + 1 :] == [f"  noise {i}" for i in range(5, TAIL_LINES + 5)]
