"""The emulator's own artifact judge: what Bedrock checks in the S3 prefix before an import job may complete.

It reads the prefix once, as Bedrock copies the artifacts when the job starts. It shares no code with the product's
validation on purpose: the two disagreeing is what a test should catch.

Sources: the Amazon Bedrock User Guide, "Import a customized model into Amazon Bedrock" (architectures, files,
Regions, no embedding models or separate adapters) and the AWS Machine Learning Blog post "Deploy GPT-OSS models
with Amazon Bedrock Custom Model Import" (bf16 weights, the three end-of-sequence ids, us-east-1). Not documented,
so our inference and unproven against Bedrock: the message texts; that a non-generative head or a
`quantization_config` with no quantized tensors fails the job (the loader follows the config); that the two-id
GPT-OSS generation_config fails invocations with ModelErrorException (AWS says invocations fail, not how).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# config.json model_type values Bedrock imports; its rejection message lists them in lowercase.
SUPPORTED_ARCHITECTURES = (
    "llama",
    "mllama",
    "mistral",
    "mixtral",
    "t5",
    "gpt_bigcode",
    "qwen2",
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3",
    "qwen3_moe",
    "gpt_oss",
)
SUPPORTED_TOKENIZER_CLASSES = frozenset(
    f"{base}{suffix}"
    for base in (
        "LlamaTokenizer",
        "CodeLlamaTokenizer",
        "T5Tokenizer",
        "GPT2Tokenizer",
        "GPTNeoXTokenizer",
        "PreTrainedTokenizer",
        "Qwen2Tokenizer",
    )
    for suffix in ("", "Fast")
)
INDEX_FILE = "model.safetensors.index.json"
# Where an import job may run, and the architectures limited to fewer Regions.
IMPORT_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-central-1")
REGIONS_BY_ARCHITECTURE = {"gpt_oss": ("us-east-1",)}
# Class-name endings of the text-generation heads Bedrock serves.
GENERATION_HEADS = ("ForCausalLM", "ForConditionalGeneration")
# A weights file holds quantized data when a tensor is stored in anything but 16/32-bit floats, or carries the
# blocks/scales/packed weights of a quantization scheme.
FLOAT_DTYPES = ("BF16", "F16", "F32")
QUANTIZED_NAME_MARKERS = ("_blocks", "_scales", ".blocks", ".scales", "qweight", "qzeros", "weight_scale", "absmax")
GPT_OSS_END_OF_SEQUENCE = (200002, 199999, 200012)


class ArtifactRejectedError(Exception):
    """Why Bedrock would fail an import job; the message becomes the job's failureMessage."""


@dataclass(frozen=True)
class ArtifactInspection:
    """What the import job learned from the S3 prefix when it was created."""

    failure_message: str | None
    architecture: str | None = None
    instruct_supported: bool = False
    weights_bytes: int = 0
    invocation_failure: str | None = None  # the model imports, and every invocation fails with this message


def inspect_artifacts(s3: Any, s3_uri: str, region: str = "us-east-1") -> ArtifactInspection:
    """Decide, as Bedrock does, whether the model under ``s3_uri`` imports in ``region``; read-only (list + get)."""
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        sizes = {
            item["Key"][len(prefix) :]: item["Size"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }

        def read(name: str, length: int | None = None) -> bytes:
            ranged = {"Range": f"bytes=0-{length - 1}"} if length else {}
            return s3.get_object(Bucket=bucket, Key=prefix + name, **ranged)["Body"].read()

        return _judge_artifacts(sizes, read, region)
    except ArtifactRejectedError as failure:
        return ArtifactInspection(failure_message=str(failure))
    except ClientError as error:
        return ArtifactInspection(
            failure_message=f"Unable to read the model artifacts from {s3_uri}: {error.response['Error']['Code']}."
        )


def _judge_artifacts(sizes: dict[str, int], read: Callable[..., bytes], region: str) -> ArtifactInspection:
    def read_json(name: str) -> dict[str, Any]:
        try:
            document = json.loads(read(name))
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ArtifactRejectedError(f"{name} is not a valid JSON object.")
        return document

    if "config.json" not in sizes:
        raise ArtifactRejectedError("config.json was not found in the model artifacts.")
    config = read_json("config.json")
    architecture = config.get("model_type")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ArtifactRejectedError(
            f"The model architecture {architecture!r} is not supported. "
            f"Supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}."
        )
    if region not in REGIONS_BY_ARCHITECTURE.get(architecture, IMPORT_REGIONS):
        raise ArtifactRejectedError(f"Models of architecture {architecture!r} cannot be imported in {region}.")
    classes = config.get("architectures") or []
    if classes and not any(str(name).endswith(GENERATION_HEADS) for name in classes):
        raise ArtifactRejectedError(
            f"The model class {', '.join(map(str, classes))} is not supported: only text generation models can be "
            "imported."
        )
    weights = [name for name in sizes if name.endswith(".safetensors") and "/" not in name]
    if not weights:
        raise ArtifactRejectedError("No model weights in .safetensors format were found in the model artifacts.")
    _check_declared_quantization(config, weights, read)
    if INDEX_FILE in sizes:
        _check_index(read_json(INDEX_FILE), set(sizes))
    tokenizer_config = _check_tokenizer(sizes, read_json)
    return ArtifactInspection(
        failure_message=None,
        architecture=architecture,
        instruct_supported=bool(
            {"chat_template.jinja", "chat_template.json"} & set(sizes) or "chat_template" in tokenizer_config
        ),
        weights_bytes=sum(sizes[name] for name in weights),
        invocation_failure=_generation_failure(architecture, sizes, read_json),
    )


def _tensor_entries(name: str, read: Callable[..., bytes]) -> dict[str, Any]:
    """The JSON header of a safetensors file: its first 8 bytes give the header's length."""
    length = int.from_bytes(read(name, 8), "little")
    header = json.loads(read(name, 8 + length)[8:])
    if not isinstance(header, dict):
        raise ArtifactRejectedError(f"The weight file {name} is not a valid safetensors file.")
    header.pop("__metadata__", None)
    return header


def _check_declared_quantization(config: dict[str, Any], weights: list[str], read: Callable[..., bytes]) -> None:
    """A quantization_config makes the loader expect quantized tensors: weights with none cannot load."""
    declared = config.get("quantization_config")
    if not declared:
        return
    for name in weights:
        for tensor, entry in _tensor_entries(name, read).items():
            if entry.get("dtype") not in FLOAT_DTYPES or any(marker in tensor for marker in QUANTIZED_NAME_MARKERS):
                return
    method = declared.get("quant_method", "a") if isinstance(declared, dict) else "a"
    raise ArtifactRejectedError(
        f"Failed to load the model weights: config.json declares {method} quantization, but no quantized weights "
        "were found."
    )


def _generation_failure(
    architecture: str, sizes: dict[str, int], read_json: Callable[[str], dict[str, Any]]
) -> str | None:
    """GPT-OSS without the three end-of-sequence ids imports, then cannot stop generating."""
    if architecture != "gpt_oss" or "generation_config.json" not in sizes:
        return None
    eos = read_json("generation_config.json").get("eos_token_id")
    ids = eos if isinstance(eos, list) else [eos]
    if all(token in ids for token in GPT_OSS_END_OF_SEQUENCE):
        return None
    return "The model failed to process the request: generation_config.json is missing end-of-sequence token ids."


def _check_tokenizer(sizes: dict[str, int], read_json: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """The tokenizer files Bedrock needs; returns tokenizer_config.json."""
    if "tokenizer_config.json" not in sizes:
        raise ArtifactRejectedError("tokenizer_config.json was not found in the model artifacts.")
    if "tokenizer.json" not in sizes and "tokenizer.model" not in sizes:
        raise ArtifactRejectedError(
            "No tokenizer was found in the model artifacts: upload tokenizer.json or tokenizer.model."
        )
    tokenizer_config = read_json("tokenizer_config.json")
    tokenizer_class = tokenizer_config.get("tokenizer_class")
    if tokenizer_class is not None and tokenizer_class not in SUPPORTED_TOKENIZER_CLASSES:
        raise ArtifactRejectedError(f"The tokenizer class {tokenizer_class!r} is not supported.")
    return tokenizer_config


def _check_index(index: dict[str, Any], present: set[str]) -> None:
    metadata = index.get("metadata")
    if not isinstance(metadata, dict):
        raise ArtifactRejectedError(f"{INDEX_FILE} is missing the required 'metadata' object.")
    unexpected = sorted(set(metadata) - {"total_size"})
    if unexpected:
        raise ArtifactRejectedError(
            f"{INDEX_FILE} has an unsupported field 'metadata.{unexpected[0]}': metadata may only hold 'total_size'."
        )
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        raise ArtifactRejectedError(f"{INDEX_FILE} is missing the required 'weight_map' object.")
    missing = sorted(set(weight_map.values()) - present)
    if missing:
        raise ArtifactRejectedError(f"The weight file {missing[0]} listed in {INDEX_FILE} was not found.")
