"""Small, deterministic model repositories shaped like real Hugging Face ones (dev/test only, never deployed).

The workflow's logic (validation, planning, copying, index rewriting) depends on the *shape* of a repository: its
file names, its config fields, valid safetensors headers, an index consistent with its shards. These helpers produce
that shape in a few hundred KB, or with multi-MiB shards when a transfer test needs real multipart sizes. The same
arguments always give the same bytes, so tests can compare checksums across runs.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

TensorSpec = tuple[str, tuple[int, ...]]
"""(safetensors dtype name, shape), e.g. ("BF16", (64, 64))."""

DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}

GPT_OSS_EOS_IDS = (200002, 199999, 200012)
# transformers writes this sentinel when a tokenizer has no length limit; real tokenizer_config.json files carry it.
_NO_MAX_LENGTH = 1000000000000000019884624838656
_CHUNK_ELEMENTS = 1 << 22  # generate big tensors piecewise: temporaries stay small even for GiB-sized shards


# --------------------------------------------------------------------------------------------------------------------
# safetensors


def tensor_nbytes(spec: TensorSpec) -> int:
    dtype, shape = spec
    return DTYPE_SIZES[dtype] * math.prod(shape)


def safetensors_bytes(
    tensors: Mapping[str, TensorSpec], *, metadata: Mapping[str, str] | None = None, seed: int = 0
) -> bytes:
    """A valid safetensors file holding seeded random tensors, in the given order.

    The header is written by hand (8-byte little-endian length, JSON, space padding to 8 bytes) because numpy has no
    bfloat16, the dtype of nearly every real checkpoint. Each tensor's values depend only on (seed, name), so moving a
    tensor to another shard does not change its bytes.
    """
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, spec in tensors.items():
        size = tensor_nbytes(spec)
        header[name] = {"dtype": spec[0], "shape": list(spec[1]), "data_offsets": [offset, offset + size]}
        offset += size
    header_json = json.dumps(header, separators=(",", ":")).encode()
    header_json += b" " * (-len(header_json) % 8)
    parts = [struct.pack("<Q", len(header_json)), header_json]
    for name, (dtype, shape) in tensors.items():
        parts.extend(_tensor_chunks(dtype, math.prod(shape), _rng(seed, name)))
    return b"".join(parts)


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _tensor_chunks(dtype: str, count: int, rng: np.random.Generator) -> Iterator[bytes]:
    """Plausible values: small normals for floats, small integers for ints, random bytes for packed/fp8 types."""
    for start in range(0, count, _CHUNK_ELEMENTS):
        n = min(_CHUNK_ELEMENTS, count - start)
        if dtype == "BF16":
            # Random sign and mantissa, exponent for 2^-10..2^-3: weight-like values, built from integers because
            # that is 6x faster than drawing normals (it matters for GiB-sized benchmark shards).
            bits = rng.integers(0, 1 << 16, n, dtype=np.uint16)
            yield ((bits & 0x807F) | ((0x75 + ((bits >> 7) & 7)) << 7)).astype("<u2").tobytes()
        elif dtype in ("F16", "F32", "F64"):
            yield (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(f"<f{DTYPE_SIZES[dtype]}").tobytes()
        elif dtype == "BOOL":
            yield rng.integers(0, 2, n, dtype=np.uint8).tobytes()
        elif dtype[0] in "IU" and DTYPE_SIZES[dtype] > 1:
            yield rng.integers(0, 16, n).astype(f"<{dtype[0].lower()}{DTYPE_SIZES[dtype]}").tobytes()
        else:  # U8, I8 (MXFP4 blocks and scales), F8_*
            yield rng.bytes(n)


def _split_into_shards(tensors: Mapping[str, TensorSpec], num_shards: int) -> list[dict[str, TensorSpec]]:
    """Consecutive groups of roughly equal byte size, none empty (tensors are never split, as in transformers)."""
    if not 1 <= num_shards <= len(tensors):
        raise ValueError(f"num_shards must be between 1 and the number of tensors ({len(tensors)}), got {num_shards}")
    total = sum(tensor_nbytes(spec) for spec in tensors.values())
    shards: list[dict[str, TensorSpec]] = [{}]
    placed = 0
    for index, (name, spec) in enumerate(tensors.items()):
        unplaced = len(tensors) - index
        if shards[-1] and (placed >= total * len(shards) / num_shards or unplaced == num_shards - len(shards)):
            shards.append({})
        shards[-1][name] = spec
        placed += tensor_nbytes(spec)
    return shards


def _pad_shards(shards: list[dict[str, TensorSpec]], shard_bytes: int) -> None:
    """Grow each shard's largest tensor along its first axis until the shard holds about `shard_bytes` of data.

    Only sizes matter to transfer tests; the padded tensor's shape no longer matches config.json.
    """
    for shard in shards:
        missing = shard_bytes - sum(tensor_nbytes(spec) for spec in shard.values())
        if missing <= 0:
            continue
        name = max(shard, key=lambda key: tensor_nbytes(shard[key]))
        dtype, shape = shard[name]
        row_bytes = tensor_nbytes((dtype, shape)) // shape[0]
        shard[name] = (dtype, (shape[0] + math.ceil(missing / row_bytes), *shape[1:]))


def _shard_name(stem: str, ext: str, index: int, count: int, *, zero_based: bool) -> str:
    if count == 1:
        return f"{stem}.{ext}"
    if zero_based:  # openai/gpt-oss-* ship model-00000-of-00002 .. model-00002-of-00002
        return f"{stem}-{index:05d}-of-{count - 1:05d}.{ext}"
    return f"{stem}-{index + 1:05d}-of-{count:05d}.{ext}"


def _weight_files(
    tensors: Mapping[str, TensorSpec],
    *,
    num_shards: int,
    shard_bytes: int | None,
    weights: Literal["safetensors", "bin"],
    index_total_parameters: bool,
    zero_based_names: bool,
    seed: int,
) -> dict[str, bytes]:
    """Shards plus, when there is more than one, the index transformers writes next to them."""
    shards = _split_into_shards(tensors, num_shards)
    if shard_bytes is not None:
        _pad_shards(shards, shard_bytes)
    stem, ext = ("model", "safetensors") if weights == "safetensors" else ("pytorch_model", "bin")
    files: dict[str, bytes] = {}
    weight_map: dict[str, str] = {}
    for index, shard in enumerate(shards):
        name = _shard_name(stem, ext, index, len(shards), zero_based=zero_based_names)
        if weights == "safetensors":
            files[name] = safetensors_bytes(shard, metadata={"format": "pt"}, seed=seed)
        else:  # a pickle stand-in: only its name and size matter (Bedrock refuses .bin weights)
            files[name] = _rng(seed, name).bytes(sum(tensor_nbytes(spec) for spec in shard.values()))
        weight_map.update(dict.fromkeys(shard, name))
    if len(shards) > 1:
        metadata: dict[str, int] = {}
        if index_total_parameters:  # newer transformers writes it; Bedrock rejects it
            metadata["total_parameters"] = sum(math.prod(shape) for shard in shards for _, shape in shard.values())
        metadata["total_size"] = sum(tensor_nbytes(spec) for shard in shards for spec in shard.values())
        files[f"{stem}.{ext}.index.json"] = _json(
            {"metadata": metadata, "weight_map": dict(sorted(weight_map.items()))}
        )
    return files


# --------------------------------------------------------------------------------------------------------------------
# tokenizer and other small files


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def _byte_level_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values (the base vocabulary of every byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def tokenizer_json(special_tokens: Mapping[str, int]) -> bytes:
    """A tiny byte-level BPE tokenizer.json (256 byte tokens, no merges) with the given special tokens added."""
    added = [
        {
            "id": token_id,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for token, token_id in sorted(special_tokens.items(), key=lambda item: item[1])
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return _json(
        {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": byte_level,
            "post_processor": None,
            "decoder": byte_level,
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": {char: index for index, char in enumerate(_byte_level_alphabet())},
                "merges": [],
            },
        }
    )


def _tokenizer_config(
    tokenizer_class: str, special_tokens: Mapping[str, int], roles: Mapping[str, str], chat_template: str | None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "added_tokens_decoder": {
            str(token_id): {
                "content": token,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for token, token_id in sorted(special_tokens.items(), key=lambda item: item[1])
        },
        **roles,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": _NO_MAX_LENGTH,
        "tokenizer_class": tokenizer_class,
    }
    if chat_template is not None:
        config["chat_template"] = chat_template
    return config


_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z",
        "*.bin",
        "*.gguf",
        "*.h5",
        "*.msgpack",
        "*.onnx",
        "*.pt",
        "*.pth",
        "*.safetensors",
        "*.tar.*",
        "*.zip",
        "*tfevents*",
    )
).encode()


def _readme(name: str, description: str, tags: list[str]) -> bytes:
    tag_lines = "".join(f"- {tag}\n" for tag in tags)
    front_matter = f"license: apache-2.0\npipeline_tag: text-generation\nlibrary_name: transformers\ntags:\n{tag_lines}"
    return f"---\n{front_matter}---\n\n# {name}\n\n{description}\n".encode()


def write_repo(files: Mapping[str, bytes], folder: Path) -> Path:
    """Write a generated repository to `folder` (sub-folders created as needed), e.g. for `LocalHub.add_repo`."""
    for relative_path, data in files.items():
        target = folder / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


# --------------------------------------------------------------------------------------------------------------------
# GPT-OSS

_GPT_OSS_SPECIAL_TOKENS = {
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|call|>": 200012,
}

# The harmony format in miniature: enough for a renderer to produce real prompts, not the full 300-line original.
GPT_OSS_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|start|>{{ message.role }}{% if message.role == 'assistant' %}<|channel|>final{% endif %}"
    "<|message|>{{ message.content }}<|end|>"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
)


def _gpt_oss_tensors(
    *, hidden: int, layers: int, vocab_size: int, heads: int, kv_heads: int, head_dim: int, experts: int, mxfp4: bool
) -> dict[str, TensorSpec]:
    """Tensor names, dtypes and shapes of transformers' GptOssForCausalLM checkpoints, layer by layer."""
    intermediate = hidden
    tensors: dict[str, TensorSpec] = {"model.embed_tokens.weight": ("BF16", (vocab_size, hidden))}
    for layer in range(layers):
        prefix = f"model.layers.{layer}"
        tensors |= {
            f"{prefix}.input_layernorm.weight": ("BF16", (hidden,)),
            f"{prefix}.self_attn.q_proj.weight": ("BF16", (heads * head_dim, hidden)),
            f"{prefix}.self_attn.q_proj.bias": ("BF16", (heads * head_dim,)),
            f"{prefix}.self_attn.k_proj.weight": ("BF16", (kv_heads * head_dim, hidden)),
            f"{prefix}.self_attn.k_proj.bias": ("BF16", (kv_heads * head_dim,)),
            f"{prefix}.self_attn.v_proj.weight": ("BF16", (kv_heads * head_dim, hidden)),
            f"{prefix}.self_attn.v_proj.bias": ("BF16", (kv_heads * head_dim,)),
            f"{prefix}.self_attn.o_proj.weight": ("BF16", (hidden, heads * head_dim)),
            f"{prefix}.self_attn.o_proj.bias": ("BF16", (hidden,)),
            f"{prefix}.self_attn.sinks": ("BF16", (heads,)),
            f"{prefix}.post_attention_layernorm.weight": ("BF16", (hidden,)),
            f"{prefix}.mlp.router.weight": ("BF16", (experts, hidden)),
            f"{prefix}.mlp.router.bias": ("BF16", (experts,)),
        }
        experts_prefix = f"{prefix}.mlp.experts"
        if mxfp4:  # 32 four-bit values per block: 16 bytes of blocks + 1 byte of scale
            tensors |= {
                f"{experts_prefix}.gate_up_proj_blocks": ("U8", (experts, 2 * intermediate, hidden // 32, 16)),
                f"{experts_prefix}.gate_up_proj_scales": ("U8", (experts, 2 * intermediate, hidden // 32)),
                f"{experts_prefix}.down_proj_blocks": ("U8", (experts, hidden, intermediate // 32, 16)),
                f"{experts_prefix}.down_proj_scales": ("U8", (experts, hidden, intermediate // 32)),
            }
        else:
            tensors |= {
                f"{experts_prefix}.gate_up_proj": ("BF16", (experts, hidden, 2 * intermediate)),
                f"{experts_prefix}.down_proj": ("BF16", (experts, intermediate, hidden)),
            }
        tensors |= {
            f"{experts_prefix}.gate_up_proj_bias": ("BF16", (experts, 2 * intermediate)),
            f"{experts_prefix}.down_proj_bias": ("BF16", (experts, hidden)),
        }
    tensors["model.norm.weight"] = ("BF16", (hidden,))
    tensors["lm_head.weight"] = ("BF16", (vocab_size, hidden))
    return tensors


def _gpt_oss_original_tensors(
    *, hidden: int, layers: int, vocab_size: int, heads: int, kv_heads: int, head_dim: int, experts: int
) -> dict[str, TensorSpec]:
    """OpenAI's own checkpoint layout (original/model.safetensors), which no index describes."""
    qkv = (heads + 2 * kv_heads) * head_dim
    tensors: dict[str, TensorSpec] = {"embedding.weight": ("BF16", (vocab_size, hidden))}
    for layer in range(layers):
        prefix = f"block.{layer}"
        tensors |= {
            f"{prefix}.attn.norm.scale": ("F32", (hidden,)),
            f"{prefix}.attn.qkv.weight": ("BF16", (qkv, hidden)),
            f"{prefix}.attn.qkv.bias": ("BF16", (qkv,)),
            f"{prefix}.attn.sinks": ("BF16", (heads,)),
            f"{prefix}.attn.out.weight": ("BF16", (hidden, heads * head_dim)),
            f"{prefix}.attn.out.bias": ("BF16", (hidden,)),
            f"{prefix}.mlp.norm.scale": ("F32", (hidden,)),
            f"{prefix}.mlp.gate.weight": ("BF16", (experts, hidden)),
            f"{prefix}.mlp.gate.bias": ("BF16", (experts,)),
            f"{prefix}.mlp.mlp1_weight.blocks": ("U8", (experts, 2 * hidden, hidden // 32, 16)),
            f"{prefix}.mlp.mlp1_weight.scales": ("U8", (experts, 2 * hidden, hidden // 32)),
            f"{prefix}.mlp.mlp1_bias": ("BF16", (experts, 2 * hidden)),
            f"{prefix}.mlp.mlp2_weight.blocks": ("U8", (experts, hidden, hidden // 32, 16)),
            f"{prefix}.mlp.mlp2_weight.scales": ("U8", (experts, hidden, hidden // 32)),
            f"{prefix}.mlp.mlp2_bias": ("BF16", (experts, hidden)),
        }
    tensors["norm.scale"] = ("F32", (hidden,))
    tensors["unembedding.weight"] = ("BF16", (vocab_size, hidden))
    return tensors


def gpt_oss_repo(
    *,
    num_shards: int = 3,
    hidden: int = 64,
    layers: int = 2,
    vocab_size: int = 512,
    mxfp4: bool = False,
    index_total_parameters: bool = True,
    include_metal: bool = True,
    include_original: bool = True,
    eos_ids: tuple[int, ...] = GPT_OSS_EOS_IDS,
    shard_bytes: int | None = None,
    zero_based_shard_names: bool = True,
    seed: int = 0,
) -> dict[str, bytes]:
    """A repository laid out like openai/gpt-oss-20b, with tiny dimensions (about 0.7 MB by default).

    Defaults describe the bf16 checkpoint Bedrock imports: no quantization_config, BF16 expert weights, the three-id
    generation_config. `mxfp4=True` gives the original quantized layout (U8 `*_blocks`/`*_scales` + quantization_config)
    instead; `eos_ids=(200002, 199999)` the older two-id generation_config that fails at invocation time. Shards are
    named zero-based (model-00000-of-00002...) as in the real repository. `vocab_size` is far below the real 201088,
    so the special-token ids (which are the real ones) lie outside the embedding: nothing here runs the model.
    `shard_bytes` grows each shard to about that many bytes (see `_pad_shards`).
    """
    if hidden % 32:
        raise ValueError(f"hidden must be a multiple of 32 (the MXFP4 block size), got {hidden}")
    head_dim = 16
    heads = max(2, hidden // head_dim)
    kv_heads = max(1, heads // 2)
    experts = 4
    dims = {
        "hidden": hidden,
        "layers": layers,
        "vocab_size": vocab_size,
        "heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "experts": experts,
    }
    config: dict[str, Any] = {
        "architectures": ["GptOssForCausalLM"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "eos_token_id": 200002,
        "experts_per_token": 2,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initial_context_length": 4096,
        "initializer_range": 0.02,
        "intermediate_size": hidden,
        "layer_types": ["sliding_attention" if layer % 2 == 0 else "full_attention" for layer in range(layers)],
        "max_position_embeddings": 131072,
        "model_type": "gpt_oss",
        "num_attention_heads": heads,
        "num_experts_per_tok": 2,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "num_local_experts": experts,
        "output_router_logits": False,
        "pad_token_id": 199999,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "factor": 32.0,
            "original_max_position_embeddings": 4096,
            "rope_type": "yarn",
            "truncate": False,
        },
        "rope_theta": 150000,
        "router_aux_loss_coef": 0.9,
        "sliding_window": 128,
        "swiglu_limit": 7.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.55.0",
        "use_cache": True,
        "vocab_size": vocab_size,
    }
    if mxfp4:
        config["quantization_config"] = {
            "modules_to_not_convert": [
                "model.layers.*.self_attn",
                "model.layers.*.mlp.router",
                "model.embed_tokens",
                "lm_head",
            ],
            "quant_method": "mxfp4",
        }
    roles = {"bos_token": "<|startoftext|>", "eos_token": "<|return|>", "pad_token": "<|endoftext|>"}
    files: dict[str, bytes] = {
        ".gitattributes": _GITATTRIBUTES,
        "README.md": _readme(
            "gpt-oss-tiny",
            "A generated stand-in for openai/gpt-oss-20b: same files, same config fields, random weights.",
            ["vllm", "gpt_oss"],
        ),
        "config.json": _json(config),
        "generation_config.json": _json(
            {
                "bos_token_id": 199998,
                "do_sample": True,
                "eos_token_id": list(eos_ids),
                "pad_token_id": 199999,
                "transformers_version": "4.55.0",
            }
        ),
        "chat_template.jinja": GPT_OSS_CHAT_TEMPLATE.encode(),
        "special_tokens_map.json": _json(roles),
        "tokenizer.json": tokenizer_json(_GPT_OSS_SPECIAL_TOKENS),
        "tokenizer_config.json": _json(
            _tokenizer_config("PreTrainedTokenizerFast", _GPT_OSS_SPECIAL_TOKENS, roles, chat_template=None)
        ),
    }
    files |= _weight_files(
        _gpt_oss_tensors(**dims, mxfp4=mxfp4),
        num_shards=num_shards,
        shard_bytes=shard_bytes,
        weights="safetensors",
        index_total_parameters=index_total_parameters,
        zero_based_names=zero_based_shard_names,
        seed=seed,
    )
    if include_metal:  # the Metal backend's own format: opaque to everyone else
        files["metal/model.bin"] = b"GPT-OSS v1.0".ljust(16, b"\0") + _rng(seed, "metal").bytes(64 * 1024)
    if include_original:
        files["original/config.json"] = _json(
            {
                "num_hidden_layers": layers,
                "num_experts": experts,
                "experts_per_token": 2,
                "vocab_size": vocab_size,
                "hidden_size": hidden,
                "intermediate_size": hidden,
                "swiglu_limit": 7.0,
                "head_dim": head_dim,
                "num_attention_heads": heads,
                "num_key_value_heads": kv_heads,
                "sliding_window": 128,
                "initial_context_length": 4096,
                "rope_theta": 150000,
                "rope_scaling_factor": 32.0,
                "rope_ntk_alpha": 1,
                "rope_ntk_beta": 32,
            }
        )
        files["original/model.safetensors"] = safetensors_bytes(_gpt_oss_original_tensors(**dims), seed=seed)
    return dict(sorted(files.items()))


# --------------------------------------------------------------------------------------------------------------------
# Other architectures


_LLAMA3_TOKENS = {"<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|eot_id|>": 128009}
_QWEN_TOKENS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
_SENTENCEPIECE_TOKENS = {"<unk>": 0, "<s>": 1, "</s>": 2}
_BERT_TOKENS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}

# Per model_type: tokenizer class, special tokens and their roles, whether a SentencePiece tokenizer.model ships,
# and the config fields that differ from the llama-shaped defaults (transformers_version: what the public checkpoint
# of that family was saved with).
_FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "tokens": _LLAMA3_TOKENS,
        "roles": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
        "config": {
            "rope_theta": 500000.0,
            "max_position_embeddings": 131072,
            "bos_token_id": 128000,
            "transformers_version": "4.43.0.dev0",
        },
    },
    "mistral": {
        "tokenizer_class": "LlamaTokenizerFast",
        "tokens": _SENTENCEPIECE_TOKENS,
        "roles": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
        "sentencepiece": True,
        "config": {
            "rope_theta": 1000000.0,
            "max_position_embeddings": 32768,
            "sliding_window": None,
            "transformers_version": "4.42.0.dev0",
        },
    },
    "mixtral": {
        "tokenizer_class": "LlamaTokenizerFast",
        "tokens": _SENTENCEPIECE_TOKENS,
        "roles": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
        "sentencepiece": True,
        "config": {
            "rope_theta": 1000000.0,
            "max_position_embeddings": 32768,
            "num_local_experts": 4,
            "transformers_version": "4.36.0.dev0",
        },
        "moe": "mixtral",
    },
    "phi3": {
        "tokenizer_class": "LlamaTokenizerFast",
        "tokens": _SENTENCEPIECE_TOKENS | {"<|endoftext|>": 32000, "<|end|>": 32007},
        "roles": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>"},
        "sentencepiece": True,
        "config": {"max_position_embeddings": 4096, "original_max_position_embeddings": 4096},
        "fused": True,
    },
    "qwen2": {
        "tokenizer_class": "Qwen2TokenizerFast",
        "tokens": _QWEN_TOKENS,
        "roles": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        "config": {
            "rope_theta": 1000000.0,
            "max_position_embeddings": 32768,
            "use_sliding_window": False,
            "transformers_version": "4.43.1",
        },
        "qkv_bias": True,
    },
    "qwen3": {
        "tokenizer_class": "Qwen2TokenizerFast",
        "tokens": _QWEN_TOKENS,
        "roles": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        "config": {
            "rope_theta": 1000000.0,
            "max_position_embeddings": 40960,
            "transformers_version": "4.51.0",
        },
        "qk_norm": True,
    },
    "qwen3_moe": {
        "tokenizer_class": "Qwen2TokenizerFast",
        "tokens": _QWEN_TOKENS,
        "roles": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        "config": {
            "rope_theta": 1000000.0,
            "max_position_embeddings": 40960,
            "num_experts": 4,
            "moe_intermediate_size": 64,
            "transformers_version": "4.51.0",
        },
        "qk_norm": True,
        "moe": "qwen",
    },
}

_GENERIC_CHAT_TEMPLATE = (
    "{%- for message in messages -%}{{ message.role }}: {{ message.content }}\n{%- endfor -%}"
    "{%- if add_generation_prompt -%}assistant: {%- endif -%}"
)


def _decoder_tensors(family: Mapping[str, Any], *, hidden: int, layers: int, vocab_size: int) -> dict[str, TensorSpec]:
    heads, head_dim = max(2, hidden // 16), 16
    kv = max(1, heads // 2) * head_dim
    tensors: dict[str, TensorSpec] = {"model.embed_tokens.weight": ("BF16", (vocab_size, hidden))}
    for layer in range(layers):
        attn = f"model.layers.{layer}.self_attn"
        tensors[f"model.layers.{layer}.input_layernorm.weight"] = ("BF16", (hidden,))
        if family.get("fused"):
            tensors[f"{attn}.qkv_proj.weight"] = ("BF16", (heads * head_dim + 2 * kv, hidden))
        else:
            for proj, rows in (("q", heads * head_dim), ("k", kv), ("v", kv)):
                tensors[f"{attn}.{proj}_proj.weight"] = ("BF16", (rows, hidden))
                if family.get("qkv_bias"):
                    tensors[f"{attn}.{proj}_proj.bias"] = ("BF16", (rows,))
        if family.get("qk_norm"):
            tensors[f"{attn}.q_norm.weight"] = ("BF16", (head_dim,))
            tensors[f"{attn}.k_norm.weight"] = ("BF16", (head_dim,))
        tensors[f"{attn}.o_proj.weight"] = ("BF16", (hidden, heads * head_dim))
        tensors[f"model.layers.{layer}.post_attention_layernorm.weight"] = ("BF16", (hidden,))
        tensors |= _mlp_tensors(family, f"model.layers.{layer}", hidden)
    tensors["model.norm.weight"] = ("BF16", (hidden,))
    tensors["lm_head.weight"] = ("BF16", (vocab_size, hidden))
    return tensors


def _mlp_tensors(family: Mapping[str, Any], prefix: str, hidden: int) -> dict[str, TensorSpec]:
    """Dense (gate/up/down), fused (phi3) or mixture-of-experts (qwen3_moe, mixtral: 4 experts) feed-forward."""
    square: TensorSpec = ("BF16", (hidden, hidden))
    if family.get("moe") == "qwen":
        experts = {
            f"{prefix}.mlp.experts.{expert}.{proj}_proj.weight": square
            for expert in range(4)
            for proj in ("gate", "up", "down")
        }
        return {f"{prefix}.mlp.gate.weight": ("BF16", (4, hidden)), **experts}
    if family.get("moe") == "mixtral":
        sparse = f"{prefix}.block_sparse_moe"
        experts = {f"{sparse}.experts.{expert}.{w}.weight": square for expert in range(4) for w in ("w1", "w2", "w3")}
        return {f"{sparse}.gate.weight": ("BF16", (4, hidden)), **experts}
    intermediate = 2 * hidden
    if family.get("fused"):
        return {
            f"{prefix}.mlp.gate_up_proj.weight": ("BF16", (2 * intermediate, hidden)),
            f"{prefix}.mlp.down_proj.weight": ("BF16", (hidden, intermediate)),
        }
    return {
        f"{prefix}.mlp.gate_proj.weight": ("BF16", (intermediate, hidden)),
        f"{prefix}.mlp.up_proj.weight": ("BF16", (intermediate, hidden)),
        f"{prefix}.mlp.down_proj.weight": ("BF16", (hidden, intermediate)),
    }


def _bert_tensors(*, hidden: int, layers: int, vocab_size: int) -> dict[str, TensorSpec]:
    tensors: dict[str, TensorSpec] = {
        "embeddings.word_embeddings.weight": ("F32", (vocab_size, hidden)),
        "embeddings.position_embeddings.weight": ("F32", (512, hidden)),
        "embeddings.token_type_embeddings.weight": ("F32", (2, hidden)),
        "embeddings.LayerNorm.weight": ("F32", (hidden,)),
        "embeddings.LayerNorm.bias": ("F32", (hidden,)),
    }
    for layer in range(layers):
        prefix = f"encoder.layer.{layer}"
        for name, rows, cols in (
            ("attention.self.query", hidden, hidden),
            ("attention.self.key", hidden, hidden),
            ("attention.self.value", hidden, hidden),
            ("attention.output.dense", hidden, hidden),
            ("intermediate.dense", 4 * hidden, hidden),
            ("output.dense", hidden, 4 * hidden),
        ):
            tensors[f"{prefix}.{name}.weight"] = ("F32", (rows, cols))
            tensors[f"{prefix}.{name}.bias"] = ("F32", (rows,))
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"{prefix}.{norm}.weight"] = ("F32", (hidden,))
            tensors[f"{prefix}.{norm}.bias"] = ("F32", (hidden,))
    tensors["pooler.dense.weight"] = ("F32", (hidden, hidden))
    tensors["pooler.dense.bias"] = ("F32", (hidden,))
    return tensors


def generic_repo(
    model_type: str,
    architectures: list[str],
    *,
    hidden: int = 64,
    layers: int = 2,
    vocab_size: int = 512,
    num_shards: int = 1,
    weights: Literal["safetensors", "bin"] = "safetensors",
    index_total_parameters: bool = False,
    shard_bytes: int | None = None,
    tokenizer_class: str | None = None,
    chat_template: Literal["file", "tokenizer_config", "json"] | None = "file",
    config_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, bytes]:
    """A small repository for `model_type`, for validation fixtures beyond GPT-OSS.

    Known shapes: llama, mistral, mixtral, phi3, qwen2, qwen3, qwen3_moe, bert (an encoder with BertTokenizerFast
    and vocab.txt) and gpt_oss (delegates to `gpt_oss_repo`). Any other model_type gets a llama-shaped decoder, so
    unsupported architectures (gemma3, deepseek_v3...) are one call away. `chat_template` picks where the template
    lives (a separate chat_template.jinja, inside tokenizer_config.json, a chat_template.json) or None for no template
    (what a real bert repo has).
    `config_overrides` is merged last, e.g. {"max_position_embeddings": 262144} or a quantization_config.
    """
    if model_type == "gpt_oss":
        files = gpt_oss_repo(
            num_shards=num_shards,
            hidden=hidden,
            layers=layers,
            vocab_size=vocab_size,
            index_total_parameters=index_total_parameters,
            shard_bytes=shard_bytes,
            seed=seed,
        )
        oss_config = json.loads(files["config.json"]) | {"architectures": architectures} | dict(config_overrides or {})
        return files | {"config.json": _json(oss_config)}
    dims = {"hidden": hidden, "layers": layers, "vocab_size": vocab_size}
    if model_type == "bert":
        family: Mapping[str, Any] = {
            "tokenizer_class": "BertTokenizerFast",
            "tokens": _BERT_TOKENS,
            "roles": {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]"},
        }
        config: dict[str, Any] = {
            "architectures": architectures,
            "attention_probs_dropout_prob": 0.1,
            "hidden_act": "gelu",
            "hidden_size": hidden,
            "intermediate_size": 4 * hidden,
            "layer_norm_eps": 1e-12,
            "max_position_embeddings": 512,
            "model_type": "bert",
            "num_attention_heads": max(2, hidden // 16),
            "num_hidden_layers": layers,
            "pad_token_id": 0,
            "torch_dtype": "float32",
            "transformers_version": "4.55.0",
            "type_vocab_size": 2,
            "vocab_size": vocab_size,
        }
        tensors = _bert_tensors(**dims)
    else:
        family = _FAMILIES.get(model_type, _FAMILIES["llama"])
        heads = max(2, hidden // 16)
        eos_id = family["tokens"][family["roles"]["eos_token"]]
        config = {
            "architectures": architectures,
            "attention_dropout": 0.0,
            "eos_token_id": eos_id,
            "head_dim": 16,
            "hidden_act": "silu",
            "hidden_size": hidden,
            "initializer_range": 0.02,
            "intermediate_size": 2 * hidden,
            "max_position_embeddings": 8192,
            "model_type": model_type,
            "num_attention_heads": heads,
            "num_hidden_layers": layers,
            "num_key_value_heads": max(1, heads // 2),
            "rms_norm_eps": 1e-05,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.55.0",
            "use_cache": True,
            "vocab_size": vocab_size,
        } | family["config"]
        if family.get("moe"):
            config["num_experts_per_tok"] = 2
        tensors = _decoder_tensors(family, **dims)
    config = dict(sorted((config | dict(config_overrides or {})).items()))
    template = _GENERIC_CHAT_TEMPLATE
    files = {
        ".gitattributes": _GITATTRIBUTES,
        "README.md": _readme(f"{model_type}-tiny", f"A generated {model_type} stand-in with random weights.", []),
        "config.json": _json(config),
        "special_tokens_map.json": _json(family["roles"]),
        "tokenizer.json": tokenizer_json(family["tokens"]),
        "tokenizer_config.json": _json(
            _tokenizer_config(
                tokenizer_class or family["tokenizer_class"],
                family["tokens"],
                family["roles"],
                chat_template=template if chat_template == "tokenizer_config" else None,
            )
        ),
    }
    if model_type != "bert":
        files["generation_config.json"] = _json(
            {"eos_token_id": config["eos_token_id"], "transformers_version": "4.55.0"}
        )
    if chat_template == "file":
        files["chat_template.jinja"] = template.encode()
    elif chat_template == "json":
        files["chat_template.json"] = _json({"chat_template": template})
    if family.get("sentencepiece"):  # a stand-in blob: only its presence matters to validation
        files["tokenizer.model"] = _rng(seed, "tokenizer.model").bytes(4096)
    if model_type == "bert":
        unused = [f"[unused{index}]" for index in range(99)]  # ids 1-99, as in bert-base-uncased
        words = ["[PAD]", *unused, "[UNK]", "[CLS]", "[SEP]", "[MASK]", *map(chr, range(ord("a"), ord("z") + 1))]
        files["vocab.txt"] = "".join(f"{word}\n" for word in words).encode()
    files |= _weight_files(
        tensors,
        num_shards=num_shards,
        shard_bytes=shard_bytes,
        weights=weights,
        index_total_parameters=index_total_parameters,
        zero_based_names=False,
        seed=seed,
    )
    return dict(sorted(files.items()))
