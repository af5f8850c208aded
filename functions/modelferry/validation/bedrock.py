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
# Bedrock serves text generation: a class without a generation head is a base model used for embeddings
# (LlamaModel, MistralModel: e5-mistral) or a classifier/reward head (LlamaForSequenceClassification).
GENERATIVE_ARCHITECTURE_SUFFIXES = ("ForCausalLM", "ForConditionalGeneration")
# Files a sentence-transformers (embedding) model ships; Qwen3-Embedding lists Qwen3ForCausalLM, so the class alone
# does not tell. The pooling module lives in a folder such as 1_Pooling/.
EMBEDDING_MARKER_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")
EMBEDDING_MARKER_FOLDER_SUFFIX = "_Pooling"

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

# Tensor names that only exist in quantized checkpoints: MXFP4 blocks/scales (gpt-oss), GPTQ/AWQ packed weights,
# fp8 scales (compressed-tensors, FP8 block quantization), bitsandbytes state. A declared quantization_config with
# none of these and only BF16/F16/F32 tensors is stale (a dequantised fine-tune keeps the config it started from).
QUANTIZED_TENSOR_SUFFIXES = (
    "_blocks",
    "_scales",
    ".blocks",
    ".scales",
    ".qweight",
    ".qzeros",
    ".g_idx",
    ".weight_scale",
    ".weight_scale_inv",
    ".input_scale",
    ".weight_zero_point",
    ".SCB",
    ".absmax",
    ".quant_map",
    ".nested_absmax",
    ".nested_quant_map",
)

# Where Custom Model Import runs ("Import a customized model into Amazon Bedrock", supported Regions), and the
# architectures with Region limits of their own (GPT-OSS: us-east-1 only, per the AWS Machine Learning Blog post
# "Deploy GPT-OSS models with Amazon Bedrock Custom Model Import").
IMPORT_REGIONS = frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-central-1"})
ARCHITECTURE_REGIONS: dict[str, frozenset[str]] = {"gpt_oss": frozenset({"us-east-1"})}

# The transformers version AWS documents for Custom Model Import. It predates GPT-OSS (first supported by
# transformers 4.55.0), which AWS imports: for gpt_oss the documented floor is that release (our inference).
DOCUMENTED_TRANSFORMERS_VERSION = (4, 51, 3)
ARCHITECTURE_TRANSFORMERS_VERSION: dict[str, tuple[int, ...]] = {"gpt_oss": (4, 55, 0)}

# config.json, the index, generation_config.json and the chat template files are named in modelferry.selection,
# whose allow-list copies them.
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
