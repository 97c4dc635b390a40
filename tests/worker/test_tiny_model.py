from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tokenizers import Tokenizer

from gpu_worker.tiny_model import ensure_tiny_chat_model


def test_created_once_atomically_and_complete(tmp_path: Path) -> None:
    target = tmp_path / "tiny"
    # Two creators at once (as two worker processes would): both get the same complete model.
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(ensure_tiny_chat_model, [target, target]))
    assert paths == [target, target]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], (
        "a staging directory was left behind"
    )

    config = json.loads((target / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]) == (256, 4, 2)
    assert config["intermediate_size"] == 512
    tokenizer = Tokenizer.from_file(str(target / "tokenizer.json"))
    assert config["vocab_size"] == tokenizer.get_vocab_size()

    tokenizer_config = json.loads((target / "tokenizer_config.json").read_text())
    for key in ("bos_token", "eos_token"):
        assert tokenizer.token_to_id(tokenizer_config[key]) is not None
    assert tokenizer.token_to_id(tokenizer_config["eos_token"]) == config["eos_token_id"]
    assert "add_generation_prompt" in tokenizer_config["chat_template"]
    # Whisper's transcription framing is gone: plain text encodes to plain tokens.
    assert tokenizer.decode(tokenizer.encode("hello there").ids) == "hello there"

    mtime = (target / "model.safetensors").stat().st_mtime
    assert ensure_tiny_chat_model(target) == target
    assert (target / "model.safetensors").stat().st_mtime == mtime, "an existing model must be reused"
