"""Findings: what a rule reports. Codes are stable (users and the workflow match on them); docs/validation.md
documents each one, and a test keeps that page and this catalogue in step."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"  # Bedrock would refuse the model
    FIXABLE = "fixable"  # Bedrock would refuse it, and apply_fixes can repair it in place
    WARNING = "warning"  # imports, but something will likely go wrong or cost more than needed
    INFO = "info"


@dataclass(frozen=True)
class Code:
    severity: Severity
    hint: str


CODES: dict[str, Code] = {
    "CONFIG_MISSING": Code(Severity.ERROR, "Bedrock needs config.json at the root of the model; check the revision."),
    "CONFIG_INVALID": Code(Severity.ERROR, "config.json must be a JSON object with a `model_type`."),
    "ARCHITECTURE_UNSUPPORTED": Code(
        Severity.ERROR,
        "Pick a model of a supported architecture (Llama, Mllama, Mistral, Mixtral, Flan-T5, GPTBigCode, Qwen2/2.5, "
        "Qwen2-VL, Qwen2.5-VL, Qwen3 / Qwen3 MoE causal LM, GPT-OSS); embedding models are not supported.",
    ),
    "QUANTIZATION_UNSUPPORTED": Code(
        Severity.ERROR,
        "Use the bf16/fp16 checkpoint of this model (often a separate repository), or pass --allow-quantized "
        "(input `allow_quantized`) to try anyway: whether Bedrock imports it is undocumented.",
    ),
    "WEIGHTS_NOT_SAFETENSORS": Code(
        Severity.ERROR,
        "Bedrock imports .safetensors weights only: convert the checkpoint (safetensors' convert script) or pick a "
        "repository or revision that ships .safetensors.",
    ),
    "INDEX_INVALID": Code(
        Severity.ERROR,
        "model.safetensors.index.json must be a JSON object whose `weight_map` maps tensor names to shard files; "
        "a model in several shards needs one.",
    ),
    "INDEX_METADATA_MISSING": Code(
        Severity.FIXABLE, 'Run with --fix (the workflow does it after the copy): adds `"metadata": {}`.'
    ),
    "INDEX_METADATA_FIELD_UNSUPPORTED": Code(
        Severity.FIXABLE,
        "Run with --fix (the workflow does it after the copy): keeps only `total_size` in the index metadata.",
    ),
    "INDEX_SHARD_MISSING": Code(
        Severity.ERROR,
        "Every shard named in the index must be copied: check include/exclude patterns, or the upload of that file.",
    ),
    "INDEX_SHARD_UNREFERENCED": Code(
        Severity.WARNING,
        "A .safetensors file the index does not use (e.g. consolidated.safetensors) is copied for nothing: exclude it.",
    ),
    "INDEX_TENSOR_MISSING": Code(
        Severity.ERROR, "The index and the shards disagree: the shard is from another revision or the index is stale."
    ),
    "SAFETENSORS_HEADER_INVALID": Code(
        Severity.ERROR, "The file is truncated or corrupt: copy it again (or re-download it) and compare its sha256."
    ),
    "DTYPE_UNSUPPORTED": Code(
        Severity.ERROR,
        "Bedrock's documented imports use BF16, F16 or F32 tensors: use an unquantized checkpoint, or "
        "--allow-quantized when the config declares the quantization.",
    ),
    "TOKENIZER_MISSING": Code(
        Severity.ERROR, "Bedrock needs tokenizer.json: save the tokenizer with a fast tokenizer."
    ),
    "TOKENIZER_CONFIG_MISSING": Code(Severity.ERROR, "Bedrock needs a readable tokenizer_config.json."),
    "TOKENIZER_CLASS_UNSUPPORTED": Code(
        Severity.ERROR,
        "Set `tokenizer_class` to a supported class (Llama, CodeLlama, T5, GPT2, GPTNeoX, PreTrained or Qwen2 "
        "tokenizer, plain or Fast) if the tokenizer is compatible; otherwise the model cannot be imported.",
    ),
    "CHAT_TEMPLATE_MISSING": Code(
        Severity.WARNING,
        "Bedrock applies no default template: add chat_template.jinja (or `chat_template` in tokenizer_config.json) "
        "for chat-style invocations and the workflow's verification.",
    ),
    "GENERATION_CONFIG_EOS": Code(
        Severity.ERROR,
        'GPT-OSS needs `"eos_token_id": [200002, 199999, 200012]` in generation_config.json: use the current '
        "upstream generation_config.json (the older two-id file fails at invocation).",
    ),
    "SIZE_LIMIT_EXCEEDED": Code(
        Severity.ERROR, "Bedrock imports text models under 200 GB and multimodal models under 100 GB of weights."
    ),
    "CONTEXT_LENGTH_EXCEEDED": Code(
        Severity.WARNING,
        "Bedrock documents a context below 128K tokens (131072 works for GPT-OSS): the import may be refused or "
        "requests longer than that may fail.",
    ),
    "PATH_EXCLUDED": Code(Severity.INFO, "Not copied; adjust include/exclude if Bedrock needs this file."),
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    path: str | None  # None for findings about the whole model (size, architecture list...)
    message: str
    hint: str

    def to_json_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


def finding(code: str, path: str | None, message: str, severity: Severity | None = None) -> Finding:
    """A finding with its catalogued hint; `severity` overrides the default (e.g. a quantization the user allowed)."""
    entry = CODES[code]
    return Finding(code, severity or entry.severity, path, message, entry.hint)
