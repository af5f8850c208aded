"""The emulator's own artifact judge: what Bedrock checks in the S3 prefix before an import job may complete.

It reads the prefix once, as Bedrock copies the artifacts when the job starts. It shares no code with the product's
validation on purpose: the two disagreeing is what a test should catch.
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


class ArtifactRejectedError(Exception):
    """Why Bedrock would fail an import job; the message becomes the job's failureMessage."""


@dataclass(frozen=True)
class ArtifactInspection:
    """What the import job learned from the S3 prefix when it was created."""

    failure_message: str | None
    architecture: str | None = None
    instruct_supported: bool = False
    weights_bytes: int = 0


def inspect_artifacts(s3: Any, s3_uri: str) -> ArtifactInspection:
    """Decide, as Bedrock does, whether the model under ``s3_uri`` imports; read-only (list + get)."""
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        sizes = {
            item["Key"][len(prefix) :]: item["Size"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }
        return _judge_artifacts(sizes, lambda name: s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read())
    except ArtifactRejectedError as failure:
        return ArtifactInspection(failure_message=str(failure))
    except ClientError as error:
        return ArtifactInspection(
            failure_message=f"Unable to read the model artifacts from {s3_uri}: {error.response['Error']['Code']}."
        )


def _judge_artifacts(sizes: dict[str, int], read: Callable[[str], bytes]) -> ArtifactInspection:
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
    architecture = read_json("config.json").get("model_type")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ArtifactRejectedError(
            f"The model architecture {architecture!r} is not supported. "
            f"Supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}."
        )
    weights = [name for name in sizes if name.endswith(".safetensors") and "/" not in name]
    if not weights:
        raise ArtifactRejectedError("No model weights in .safetensors format were found in the model artifacts.")
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
    )


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
