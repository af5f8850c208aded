"""Which repository files are copied: what Bedrock Custom Model Import reads, nothing else, unless the request's
`include`/`exclude` patterns say otherwise.

The allow-list follows the file list of the Amazon Bedrock User Guide, "Import a customized model into Amazon
Bedrock": the weights in .safetensors (the shards the index names, or the single model.safetensors), config.json,
generation_config.json, the tokenizer files and the chat template. Multimodal models add their processor files
(transformers loads them next to the tokenizer; our reading, the page does not list them). Everything else is left
in the repository with the reason it is not loaded, and never counts toward the import's size limit.

Patterns are shell-style (fnmatch) and match the whole path inside the repository; `*` also crosses `/`, so
`metal/*` matches everything below `metal/`. `exclude` wins over everything; `include` adds files the allow-list
leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
INDEX_FILE = "model.safetensors.index.json"
SAFETENSORS_SUFFIX = ".safetensors"
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
# What transformers' tokenizers load from the model root: the fast tokenizer, its settings, SentencePiece and BPE
# vocabularies (tokenizer.model only matters for SentencePiece tokenizers; copying it for the others is harmless).
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "merges.txt",
        "vocab.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
    }
)
PROCESSOR_FILES = frozenset({"preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json"})
LOADED_FILES = frozenset({CONFIG_FILE, GENERATION_CONFIG_FILE, INDEX_FILE, *CHAT_TEMPLATE_FILES}) | TOKENIZER_FILES
LOADED_FILES |= PROCESSOR_FILES

OTHER_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx", ".onnx_data", ".tflite")
NOT_SAFETENSORS = "non-safetensors weights: Bedrock imports only .safetensors"
ADAPTER = "LoRA adapter: Bedrock does not load separate adapters (merge them into the base model)"
TRAINING_STATE = "training state (optimizer, scheduler, RNG, trainer arguments or logs): not part of the model"

# Sub-folders by kind (the first path component), then root files by name pattern, each with why it is not read.
FOLDER_REASONS: tuple[tuple[str, str], ...] = (
    ("checkpoint-*", "trainer checkpoint folder: intermediate training state, not the model Bedrock loads"),
    ("metal", "Apple Metal weights: not used by Bedrock"),
    ("original", "original-format weights, not described by the index"),
    ("onnx", "ONNX export: Bedrock imports only .safetensors"),
    ("openvino", "OpenVINO export: Bedrock imports only .safetensors"),
    ("runs", TRAINING_STATE),
    ("logs", TRAINING_STATE),
    ("*_Pooling", "sentence-transformers pooling module: embedding models are not imported"),
)
ROOT_REASONS: tuple[tuple[str, str], ...] = (
    ("adapter_config.json", ADAPTER),
    ("adapter_model.*", ADAPTER),
    ("optimizer.*", TRAINING_STATE),
    ("scheduler.*", TRAINING_STATE),
    ("rng_state*", TRAINING_STATE),
    ("scaler.pt", TRAINING_STATE),
    ("training_args.bin", TRAINING_STATE),
    ("trainer_state.json", TRAINING_STATE),
    ("*results.json", TRAINING_STATE),
    ("events.out.tfevents.*", TRAINING_STATE),
    ("consolidated*.safetensors", "Mistral-format weights, not described by the index"),
    ("*.safetensors", "weights the index does not name: Bedrock would never load them"),
    *((f"*{suffix}", NOT_SAFETENSORS) for suffix in OTHER_WEIGHT_SUFFIXES),
    (".gitattributes", "git metadata"),
    ("*.md", "documentation"),
    ("LICENSE*", "documentation"),
    ("USE_POLICY*", "documentation"),
    ("NOTICE*", "documentation"),
    ("*.txt", "documentation"),
    ("*.pdf", "documentation"),
    ("*.png", "image"),
    ("*.jpg", "image"),
    ("*.jpeg", "image"),
    ("*.gif", "image"),
    ("*.py", "custom model code: Bedrock does not run code from the repository"),
    ("modules.json", "sentence-transformers module list: embedding models are not imported"),
    ("config_sentence_transformers.json", "sentence-transformers settings: embedding models are not imported"),
    ("sentence_bert_config.json", "sentence-transformers settings: embedding models are not imported"),
)
NOT_READ = "not a file Bedrock Custom Model Import reads"


@dataclass(frozen=True)
class Selection:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def exclusion_reason(self, path: str, index_shards: frozenset[str] | None = None) -> str | None:
        """Why `path` is not copied, or None when it is. `index_shards` are the shards a usable index names; None
        when there is no usable index, and then every .safetensors file at the root is taken for weights."""
        for pattern in self.exclude:
            if fnmatchcase(path, pattern):
                return f"matched by `exclude` pattern {pattern!r}"
        if any(fnmatchcase(path, pattern) for pattern in self.include):
            return None
        return not_loaded_reason(path, index_shards)


def not_loaded_reason(path: str, index_shards: frozenset[str] | None) -> str | None:
    """The allow-list alone: None for a file the import reads, else the reason it does not."""
    if index_shards is not None and path in index_shards:
        return None
    folder, _, name = path.rpartition("/")
    if folder:
        top = folder.split("/", 1)[0]
        reason = next((why for pattern, why in FOLDER_REASONS if fnmatchcase(top, pattern)), None)
        return reason or "in a sub-folder: Bedrock reads the files at the model root only"
    if name in LOADED_FILES:
        return None
    is_plain_weights = name.endswith(SAFETENSORS_SUFFIX) and not fnmatchcase(name, "adapter_model.*")
    if index_shards is None and is_plain_weights and not fnmatchcase(name, "consolidated*"):
        return None
    return next((why for pattern, why in ROOT_REASONS if fnmatchcase(name, pattern)), NOT_READ)
