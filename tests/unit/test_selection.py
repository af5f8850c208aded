from __future__ import annotations

import pytest

from modelferry.selection import Selection


@pytest.mark.parametrize(
    ("path", "copied"),
    [
        ("config.json", True),
        ("generation_config.json", True),
        ("model.safetensors", True),  # no index: the single weights file
        ("model-00001-of-00003.safetensors", True),
        ("model.safetensors.index.json", True),
        ("tokenizer.json", True),
        ("tokenizer_config.json", True),
        ("tokenizer.model", True),
        ("special_tokens_map.json", True),
        ("added_tokens.json", True),
        ("vocab.json", True),
        ("merges.txt", True),
        ("chat_template.jinja", True),
        ("chat_template.json", True),
        ("preprocessor_config.json", True),
        ("metal/model.bin", False),
        ("original/model.safetensors", False),
        (".gitattributes", False),
        ("README.md", False),
        ("notes.txt", False),
        ("pytorch_model.bin", False),
        ("consolidated.safetensors", False),
        ("adapter_model.safetensors", False),
        ("adapter_config.json", False),
        ("optimizer.pt", False),
        ("trainer_state.json", False),
        ("checkpoint-500/model.safetensors", False),
        ("checkpoint-500/config.json", False),
        ("onnx/model.onnx", False),
        ("params.json", False),
        ("modeling_custom.py", False),
        ("sub/config.json", False),
    ],
)
def test_defaults_copy_what_bedrock_reads(path: str, copied: bool) -> None:
    assert (Selection().exclusion_reason(path) is None) is copied


def test_with_an_index_only_the_shards_it_names_are_weights() -> None:
    named = frozenset({"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
    assert Selection().exclusion_reason("model-00001-of-00002.safetensors", named) is None
    assert "does not name" in (Selection().exclusion_reason("model.safetensors", named) or "")
    # A shard the index names in a sub-folder is loaded like any other.
    assert Selection().exclusion_reason("weights/part-1.safetensors", frozenset({"weights/part-1.safetensors"})) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("checkpoint-500/optimizer.pt", "trainer checkpoint"),
        ("optimizer.pt", "training state"),
        ("onnx/model.onnx", "ONNX"),
        ("adapter_model.safetensors", "LoRA adapter"),
        ("pytorch_model.bin", "non-safetensors"),
        ("LICENSE", "documentation"),
        ("1_Pooling/config.json", "sentence-transformers"),
        ("params.json", "not a file Bedrock"),
        ("sub/config.json", "sub-folder"),
    ],
)
def test_each_kind_of_file_left_out_says_why(path: str, reason: str) -> None:
    assert reason in (Selection().exclusion_reason(path) or "")


def test_include_adds_what_the_allow_list_leaves_out_and_exclude_wins() -> None:
    selection = Selection(include=("params.json", "onnx/*"), exclude=("onnx/model.onnx", "tokenizer.model"))
    assert selection.exclusion_reason("params.json") is None
    assert selection.exclusion_reason("onnx/config.json") is None
    assert "exclude" in (selection.exclusion_reason("onnx/model.onnx") or "")
    assert "exclude" in (selection.exclusion_reason("tokenizer.model") or "")
    assert selection.exclusion_reason("config.json") is None  # the allow-list still applies to the rest
    assert selection.exclusion_reason("metal/model.bin") is not None
