"""What Bedrock Custom Model Import accepts, in one place. Source: the Amazon Bedrock User Guide, "Import a
customized model into Amazon Bedrock"
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-import-model.html).

The service keys on `config.json` `model_type` (its rejection messages list lowercase names), so that is what the
architecture rule checks; the architectures list matters only where the documentation names one.
"""

from __future__ import annotations

SUPPORTED_MODEL_TYPES = frozenset(
    {
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
    }
)
# Model types the documentation lists with one class only ("Qwen3ForCausalLM/qwen3 ... only").
REQUIRED_ARCHITECTURES: dict[str, frozenset[str]] = {
    "qwen3": frozenset({"Qwen3ForCausalLM"}),
    "qwen3_moe": frozenset({"Qwen3MoeForCausalLM"}),
    "gpt_oss": frozenset({"GptOssForCausalLM"}),
}
# A class without a generation head (LlamaModel, MistralModel...) is an embedding model: not importable.
GENERATIVE_ARCHITECTURE_SUFFIXES = ("ForCausalLM", "ForConditionalGeneration")

MULTIMODAL_MODEL_TYPES = frozenset({"mllama", "qwen2_vl", "qwen2_5_vl"})
# "Weights < 200 GB" (100 GB multimodal). AWS does not say GB or GiB: decimal is the stricter reading.
TEXT_WEIGHT_LIMIT_BYTES = 200 * 10**9
MULTIMODAL_WEIGHT_LIMIT_BYTES = 100 * 10**9

# The documentation says "less than 128K" yet imports GPT-OSS at 131072: warn only above that.
MAX_CONTEXT_LENGTH = 131072

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

# No AWS statement lists dtypes; the documented imports are bf16/fp16/fp32 checkpoints.
SUPPORTED_DTYPES = frozenset({"BF16", "F16", "F32"})

# The older two-id GPT-OSS generation_config makes invocations fail at run time.
GPT_OSS_EOS_IDS = (200002, 199999, 200012)

CONFIG_FILE = "config.json"
INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
SAFETENSORS_SUFFIX = ".safetensors"
OTHER_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx")
