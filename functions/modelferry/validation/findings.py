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


# Where each rule comes from (cited by title; docs/validation.md says what each source states).
IMPORT_GUIDE = 'Amazon Bedrock User Guide, "Import a customized model into Amazon Bedrock"'
GPT_OSS_GUIDE = 'AWS Machine Learning Blog, "Deploy GPT-OSS models with Amazon Bedrock Custom Model Import"'
INVOKE_GUIDE = 'Amazon Bedrock User Guide, "Invoke your imported model"'
SAFETENSORS_FORMAT = "the safetensors format (huggingface/safetensors, format description)"
SELECTION = "modelferry's file selection (what the import reads, from the Import guide's file list)"


@dataclass(frozen=True)
class Code:
    severity: Severity
    hint: str
    source: str = IMPORT_GUIDE


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
        source=GPT_OSS_GUIDE,
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
        "A .safetensors file the index does not use is copied for nothing: drop it from `include` (the default "
        "selection leaves such files out).",
        source=SELECTION,
    ),
    "INDEX_TENSOR_MISSING": Code(
        Severity.ERROR, "The index and the shards disagree: the shard is from another revision or the index is stale."
    ),
    "SAFETENSORS_HEADER_INVALID": Code(
        Severity.ERROR,
        "The file is truncated or corrupt: copy it again (or re-download it) and compare its sha256.",
        source=SAFETENSORS_FORMAT,
    ),
    "DTYPE_UNSUPPORTED": Code(
        Severity.ERROR,
        "Bedrock's documented imports use BF16, F16 or F32 tensors: use an unquantized checkpoint, or "
        "--allow-quantized when the config declares the quantization.",
        source=GPT_OSS_GUIDE,
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
        "Bedrock applies no default template: add the model's chat_template.jinja (or `chat_template` in "
        "tokenizer_config.json) for OpenAI chat-completions requests; completion requests work without it.",
        source=INVOKE_GUIDE,
    ),
    "GENERATION_CONFIG_EOS": Code(
        Severity.FIXABLE,
        "Run with --fix (the workflow does it after the copy): sets `eos_token_id` to [200002, 199999, 200012], "
        "the three end-of-sequence ids AWS documents for GPT-OSS (the older two-id file fails at invocation).",
        source=GPT_OSS_GUIDE,
    ),
    "GENERATION_CONFIG_MISSING": Code(
        Severity.ERROR,
        'GPT-OSS needs generation_config.json with `"eos_token_id": [200002, 199999, 200012]`: add the current '
        "upstream generation_config.json of the base model.",
        source=GPT_OSS_GUIDE,
    ),
    "SIZE_LIMIT_EXCEEDED": Code(
        Severity.ERROR, "Bedrock imports text models under 200 GB and multimodal models under 100 GB of weights."
    ),
    "CONTEXT_LENGTH_EXCEEDED": Code(
        Severity.WARNING,
        "Bedrock documents a context below 128K tokens (131072 works for GPT-OSS): the import may be refused or "
        "requests longer than that may fail.",
    ),
    "QUANTIZATION_CONFIG_STALE": Code(
        Severity.FIXABLE,
        "Run with --fix (the workflow does it after the copy): removes the stale `quantization_config` from "
        "config.json; the tensors show the weights are not quantized.",
        source=GPT_OSS_GUIDE,
    ),
    "LORA_ADAPTER_UNSUPPORTED": Code(
        Severity.ERROR,
        "Bedrock does not import separate LoRA adapters: merge the adapter into the base model (PEFT: "
        "`PeftModel.from_pretrained(base, adapter).merge_and_unload().save_pretrained(...)`) and import the merged "
        "model.",
    ),
    "HEAD_NOT_GENERATIVE": Code(
        Severity.ERROR,
        "Bedrock imports text-generation models: import the causal-LM checkpoint (a `...ForCausalLM` or "
        "`...ForConditionalGeneration` class); a classifier, reward or token-classification model cannot be served.",
    ),
    "EMBEDDING_MODEL_UNSUPPORTED": Code(
        Severity.ERROR,
        "Bedrock Custom Model Import does not support embedding models: use an embedding model Bedrock offers, or "
        "host this one elsewhere (e.g. a SageMaker AI endpoint).",
    ),
    "REGION_UNSUPPORTED": Code(
        Severity.ERROR,
        "Deploy the stack (or run `modelferry validate --region`) in a Region where Custom Model Import runs: "
        "us-east-1, us-east-2, us-west-2 or eu-central-1.",
    ),
    "ARCHITECTURE_REGION_UNSUPPORTED": Code(
        Severity.ERROR,
        "This architecture imports in fewer Regions than Custom Model Import itself (GPT-OSS: us-east-1 only): "
        "deploy a stack in one of them.",
        source=GPT_OSS_GUIDE,
    ),
    "TRANSFORMERS_VERSION_NEWER": Code(
        Severity.WARNING,
        "Nothing to do unless the import fails: if it does, save the model again with the documented transformers "
        "version, or compare the config fields the newer version added.",
    ),
    "PATH_EXCLUDED": Code(
        Severity.INFO,
        "Not copied: Bedrock does not read it. Add it with `include` if your import needs it.",
        source=SELECTION,
    ),
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    path: str | None  # None for findings about the whole model (size, architecture list...)
    message: str
    hint: str
    source: str = IMPORT_GUIDE

    def to_json_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
            "source": self.source,
        }


def finding(code: str, path: str | None, message: str, severity: Severity | None = None) -> Finding:
    """A finding with its catalogued hint; `severity` overrides the default (e.g. a quantization the user allowed)."""
    entry = CODES[code]
    return Finding(code, severity or entry.severity, path, message, entry.hint, entry.source)
