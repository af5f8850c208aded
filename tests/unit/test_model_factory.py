"""The generated repositories must look like real ones to every reader the project uses: safetensors, JSON, jinja."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load

from modelferry_cli.local.model_factory import (
    DTYPE_SIZES,
    generic_repo,
    gpt_oss_repo,
    safetensors_bytes,
    write_repo,
)


def _header(blob: bytes) -> tuple[int, dict]:
    (size,) = struct.unpack("<Q", blob[:8])
    return size, json.loads(blob[8 : 8 + size])


def _shard_names(files: dict[str, bytes]) -> list[str]:
    return sorted(name for name in files if name.startswith("model") and name.endswith(".safetensors"))


def test_safetensors_bytes_load_with_numpy_and_keep_metadata() -> None:
    tensors = {"a": ("F32", (2, 3)), "b": ("U8", (4,)), "c": ("I32", (2, 2)), "d": ("F16", (3,))}

    blob = safetensors_bytes(tensors, metadata={"format": "pt"}, seed=1)

    arrays = load(blob)
    assert {name: (array.dtype.str, array.shape) for name, array in arrays.items()} == {
        "a": ("<f4", (2, 3)),
        "b": ("|u1", (4,)),
        "c": ("<i4", (2, 2)),
        "d": ("<f2", (3,)),
    }
    assert np.all(np.abs(arrays["a"]) < 1)  # weight-like values, not garbage
    header_size, header = _header(blob)
    assert header_size % 8 == 0
    assert header["__metadata__"] == {"format": "pt"}
    assert blob == safetensors_bytes(tensors, metadata={"format": "pt"}, seed=1)
    assert blob != safetensors_bytes(tensors, metadata={"format": "pt"}, seed=2)


def test_bf16_tensors_take_two_bytes_per_element(tmp_path: Path) -> None:
    blob = safetensors_bytes({"w": ("BF16", (3, 5)), "b": ("BF16", (7,))})
    path = tmp_path / "x.safetensors"
    path.write_bytes(blob)

    header_size, header = _header(blob)
    assert header["w"]["data_offsets"] == [0, 30]
    assert header["b"]["data_offsets"] == [30, 44]
    assert len(blob) == 8 + header_size + 44
    with safe_open(path, framework="numpy") as reader:
        assert reader.get_slice("w").get_dtype() == "BF16"
        assert reader.get_slice("w").get_shape() == [3, 5]
    values = (np.frombuffer(blob[8 + header_size :], "<u2").astype(np.uint32) << 16).view(np.float32)
    assert np.all(np.isfinite(values))
    assert np.all((np.abs(values) > 1e-4) & (np.abs(values) < 0.5))


def test_gpt_oss_repo_has_the_real_files_and_config() -> None:
    files = gpt_oss_repo()

    assert sorted(files) == [
        ".gitattributes",
        "README.md",
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "metal/model.bin",
        "model-00000-of-00002.safetensors",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "original/config.json",
        "original/model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert sum(map(len, files.values())) < 2_000_000
    config = json.loads(files["config.json"])
    assert config["architectures"] == ["GptOssForCausalLM"]
    assert config["model_type"] == "gpt_oss"
    assert config["max_position_embeddings"] == 131072
    assert "quantization_config" not in config
    assert json.loads(files["generation_config.json"])["eos_token_id"] == [200002, 199999, 200012]
    tokenizer_config = json.loads(files["tokenizer_config.json"])
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "chat_template" not in tokenizer_config
    tokenizer = json.loads(files["tokenizer.json"])
    assert {token["content"] for token in tokenizer["added_tokens"]} >= {"<|return|>", "<|call|>", "<|endoftext|>"}
    assert len(tokenizer["model"]["vocab"]) == 256
    assert b"*.safetensors filter=lfs" in files[".gitattributes"]
    assert files == gpt_oss_repo()


def test_gpt_oss_chat_template_renders_a_harmony_prompt() -> None:
    jinja2 = pytest.importorskip("jinja2")
    template = jinja2.Environment(autoescape=False).from_string(gpt_oss_repo()["chat_template.jinja"].decode())

    prompt = template.render(messages=[{"role": "user", "content": "Hi"}], add_generation_prompt=True)

    assert prompt == "<|start|>user<|message|>Hi<|end|><|start|>assistant"


def test_gpt_oss_index_matches_its_shards(tmp_path: Path) -> None:
    files = gpt_oss_repo()
    write_repo(files, tmp_path)
    index = json.loads(files["model.safetensors.index.json"])

    found: dict[str, str] = {}
    total_size = total_parameters = 0
    for shard in _shard_names(files):
        with safe_open(tmp_path / shard, framework="numpy") as reader:
            assert reader.metadata() == {"format": "pt"}
            for name in reader.keys():  # noqa: SIM118 - safe_open is not a mapping
                tensor = reader.get_slice(name)
                assert tensor.get_dtype() == "BF16"
                found[name] = shard
                count = int(np.prod(tensor.get_shape()))
                total_parameters += count
                total_size += count * DTYPE_SIZES["BF16"]

    assert index["weight_map"] == found
    assert list(index["weight_map"]) == sorted(found)
    assert index["metadata"] == {"total_parameters": total_parameters, "total_size": total_size}
    assert {"model.embed_tokens.weight", "model.layers.1.mlp.experts.gate_up_proj", "lm_head.weight"} <= set(found)


def test_gpt_oss_variants() -> None:
    files = gpt_oss_repo(
        mxfp4=True, index_total_parameters=False, include_metal=False, include_original=False, eos_ids=(200002, 199999)
    )

    assert not any(name.startswith(("metal/", "original/")) for name in files)
    assert json.loads(files["config.json"])["quantization_config"]["quant_method"] == "mxfp4"
    assert json.loads(files["generation_config.json"])["eos_token_id"] == [200002, 199999]
    index = json.loads(files["model.safetensors.index.json"])
    assert list(index["metadata"]) == ["total_size"]
    blocks = "model.layers.0.mlp.experts.gate_up_proj_blocks"
    shard = files[index["weight_map"][blocks]]
    assert _header(shard)[1][blocks]["dtype"] == "U8"
    assert "model.layers.0.mlp.experts.gate_up_proj" not in index["weight_map"]


def test_shard_bytes_grows_every_shard(tmp_path: Path) -> None:
    files = gpt_oss_repo(num_shards=2, shard_bytes=3 * 1024 * 1024)

    shards = _shard_names(files)
    assert shards == ["model-00000-of-00001.safetensors", "model-00001-of-00001.safetensors"]
    for shard in shards:
        assert 3 * 1024 * 1024 <= len(files[shard]) < 3 * 1024 * 1024 + 200_000
    write_repo(files, tmp_path)
    index = json.loads(files["model.safetensors.index.json"])
    assert index["metadata"]["total_size"] == sum(len(files[s]) - 8 - _header(files[s])[0] for s in shards)


@pytest.mark.parametrize(
    ("model_type", "architecture", "tokenizer_class", "marker_tensor"),
    [
        ("llama", "LlamaForCausalLM", "PreTrainedTokenizerFast", "model.layers.0.mlp.gate_proj.weight"),
        ("mistral", "MistralForCausalLM", "LlamaTokenizerFast", "model.layers.0.mlp.up_proj.weight"),
        ("qwen2", "Qwen2ForCausalLM", "Qwen2TokenizerFast", "model.layers.0.self_attn.q_proj.bias"),
        ("qwen3_moe", "Qwen3MoeForCausalLM", "Qwen2TokenizerFast", "model.layers.1.mlp.experts.3.down_proj.weight"),
        ("phi3", "Phi3ForCausalLM", "LlamaTokenizerFast", "model.layers.0.self_attn.qkv_proj.weight"),
        ("bert", "BertModel", "BertTokenizerFast", "encoder.layer.1.attention.self.query.weight"),
        ("gemma3", "Gemma3ForCausalLM", "PreTrainedTokenizerFast", "model.layers.0.mlp.down_proj.weight"),
    ],
)
def test_generic_repo_shapes(model_type: str, architecture: str, tokenizer_class: str, marker_tensor: str) -> None:
    files = generic_repo(model_type, [architecture], num_shards=2, config_overrides={"max_position_embeddings": 999})

    config = json.loads(files["config.json"])
    assert (config["model_type"], config["architectures"], config["max_position_embeddings"]) == (
        model_type,
        [architecture],
        999,
    )
    assert json.loads(files["tokenizer_config.json"])["tokenizer_class"] == tokenizer_class
    index = json.loads(files["model.safetensors.index.json"])
    assert set(index["weight_map"].values()) == {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    assert marker_tensor in index["weight_map"]
    assert marker_tensor in _header(files[index["weight_map"][marker_tensor]])[1]


def test_generic_repo_options() -> None:
    single = generic_repo("qwen2", ["Qwen2ForCausalLM"], chat_template="tokenizer_config")
    assert "model.safetensors" in single
    assert "model.safetensors.index.json" not in single
    assert "chat_template.jinja" not in single
    assert "chat_template" in json.loads(single["tokenizer_config.json"])

    pickled = generic_repo("llama", ["LlamaForCausalLM"], weights="bin", num_shards=3, chat_template="json")
    assert "chat_template.json" in pickled
    assert not any(name.endswith(".safetensors") for name in pickled)
    index = json.loads(pickled["pytorch_model.bin.index.json"])
    assert set(index["weight_map"].values()) == {f"pytorch_model-0000{i}-of-00003.bin" for i in (1, 2, 3)}

    assert "tokenizer.model" in generic_repo("mistral", ["MistralForCausalLM"])
    oss = generic_repo("gpt_oss", ["GptOssForCausalLM"], config_overrides={"max_position_embeddings": 262144})
    assert json.loads(oss["config.json"])["max_position_embeddings"] == 262144
    assert "metal/model.bin" in oss
