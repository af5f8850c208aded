"""Rules on config.json, generation_config.json and adapter_config.json: is this a model Bedrock imports at all?"""

from __future__ import annotations

from collections.abc import Iterator

from modelferry.selection import (
    CONFIG_FILE,
    GENERATION_CONFIG_FILE,
)
from modelferry.validation.bedrock import (
    ADAPTER_CONFIG_FILE,
    ARCHITECTURE_TRANSFORMERS_VERSION,
    DOCUMENTED_TRANSFORMERS_VERSION,
    EMBEDDING_MARKER_FILES,
    EMBEDDING_MARKER_FOLDER_SUFFIX,
    GENERATIVE_ARCHITECTURE_SUFFIXES,
    GPT_OSS_EOS_IDS,
    MAX_CONTEXT_LENGTH,
    REQUIRED_ARCHITECTURES,
    SUPPORTED_MODEL_TYPES,
)
from modelferry.validation.findings import Finding, Severity, finding
from modelferry.validation.options import ValidationOptions
from modelferry.validation.rules.weights import tensors_prove_unquantized
from modelferry.validation.view import ModelView


def config_readable(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    document = view.json(CONFIG_FILE)
    if not document.present:
        if not view.is_adapter_repository:  # an adapter has no config.json of its own: its own finding says so
            yield finding("CONFIG_MISSING", CONFIG_FILE, "no config.json among the files to copy")
    elif document.error:
        yield finding("CONFIG_INVALID", CONFIG_FILE, document.error)
    elif view.config is None:
        yield finding("CONFIG_INVALID", CONFIG_FILE, "config.json has no string `model_type`")


def adapter_repository(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    if not view.is_adapter_repository:
        return
    settings = view.listed_json(ADAPTER_CONFIG_FILE).data or {}
    kind, base = settings.get("peft_type") or "PEFT", settings.get("base_model_name_or_path")
    named_base = isinstance(base, str) and base
    yield finding(
        "LORA_ADAPTER_UNSUPPORTED",
        ADAPTER_CONFIG_FILE,
        f"this repository is a {kind} adapter{f' of {base}' if named_base else ''} with no merged weights: Bedrock "
        f"does not import separate adapters; merge it into {base if named_base else 'its base model'} and import "
        "the merged model",
    )


def architecture_supported(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    model_type, architectures = view.model_type, view.architectures
    if model_type is None:
        return
    listed = ", ".join(architectures) or "no architectures"
    required = REQUIRED_ARCHITECTURES.get(model_type)
    embedding = _embedding_evidence(view)
    heads = [a for a in architectures if not a.endswith(GENERATIVE_ARCHITECTURE_SUFFIXES)]
    if model_type not in SUPPORTED_MODEL_TYPES:
        yield finding(
            "ARCHITECTURE_UNSUPPORTED",
            CONFIG_FILE,
            f"model_type {model_type!r} ({listed}) is not an architecture Bedrock imports",
        )
    elif embedding:
        yield finding(
            "EMBEDDING_MODEL_UNSUPPORTED", CONFIG_FILE, f"{model_type} ({listed}) is an embedding model: {embedding}"
        )
    elif architectures and len(heads) == len(architectures):
        yield finding(
            "HEAD_NOT_GENERATIVE",
            CONFIG_FILE,
            f"{listed} is not a text-generation head (a classifier, reward or tagging model): Bedrock serves text "
            "generation only; import the causal-LM checkpoint instead",
        )
    elif required and not required.intersection(architectures):
        yield finding(
            "ARCHITECTURE_UNSUPPORTED",
            CONFIG_FILE,
            f"{model_type} imports only as {', '.join(sorted(required))}; config.json lists {listed}",
        )


def _embedding_evidence(view: ModelView) -> str | None:
    """Why the model is an embedding model, or None: sentence-transformers files, or base-model classes only."""
    markers = [path for path in view.listed if path in EMBEDDING_MARKER_FILES]
    markers += sorted({path.split("/", 1)[0] + "/" for path in view.listed if _is_pooling_module(path)})
    if markers:
        return f"it ships the sentence-transformers files {', '.join(markers)}"
    architectures = view.architectures
    if architectures and all(a.endswith("Model") for a in architectures):
        return "its classes are base models without a generation head, as embedding models are saved"
    return None


def _is_pooling_module(path: str) -> bool:
    folder = path.split("/", 1)[0]
    return "/" in path and folder.endswith(EMBEDDING_MARKER_FOLDER_SUFFIX)


def quantization_declared(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    quantization = view.config.get("quantization_config") if view.config else None
    if not quantization:
        return
    method = quantization.get("quant_method", "unnamed") if isinstance(quantization, dict) else "unnamed"
    message = f"config.json declares a {method} quantization_config"
    proof = tensors_prove_unquantized(view)
    if proof:
        yield finding("QUANTIZATION_CONFIG_STALE", CONFIG_FILE, f"{message}, but {proof}: the declaration is stale")
    elif options.allow_quantized:
        yield finding(
            "QUANTIZATION_UNSUPPORTED",
            CONFIG_FILE,
            f"{message}; allowed by the option, but no AWS statement says it imports",
            Severity.WARNING,
        )
    else:
        yield finding("QUANTIZATION_UNSUPPORTED", CONFIG_FILE, message)


def transformers_version(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    saved_by = view.config.get("transformers_version") if view.config else None
    version = _release(saved_by) if isinstance(saved_by, str) else None
    if version is None or view.model_type not in SUPPORTED_MODEL_TYPES:
        return  # an architecture Bedrock does not import has a finding that matters more
    documented = ARCHITECTURE_TRANSFORMERS_VERSION.get(view.model_type, DOCUMENTED_TRANSFORMERS_VERSION)
    if version > documented:
        shown = ".".join(map(str, documented))
        yield finding(
            "TRANSFORMERS_VERSION_NEWER",
            CONFIG_FILE,
            f"config.json was saved by transformers {saved_by}, newer than the {shown} documented for "
            f"{view.model_type} imports: fields a newer version writes may not be understood",
        )


def _release(version: str) -> tuple[int, ...] | None:
    """The numeric release of a version string ("4.57.0.dev0" -> (4, 57, 0)); None when it does not start with one."""
    numbers = []
    for part in version.split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers) if numbers else None


def context_length(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    if view.config is None:
        return
    # Multimodal configs keep the language model's settings in `text_config`.
    sections = [view.config, view.config.get("text_config")]
    lengths = [
        value
        for section in sections
        if isinstance(section, dict)
        for key in ("max_position_embeddings", "n_positions")
        if isinstance(value := section.get(key), int)
    ]
    longest = max(lengths, default=0)
    if longest > MAX_CONTEXT_LENGTH:
        yield finding(
            "CONTEXT_LENGTH_EXCEEDED",
            CONFIG_FILE,
            f"the model declares a context of {longest} tokens, above the {MAX_CONTEXT_LENGTH} Bedrock is known "
            "to take",
        )


def generation_config_eos(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    if view.model_type != "gpt_oss":
        return
    document = view.json(GENERATION_CONFIG_FILE)
    expected = list(GPT_OSS_EOS_IDS)
    if not document.present or document.error or document.data is None:
        state = document.error or "there is none to copy"
        message = f"GPT-OSS needs generation_config.json with eos_token_id {expected}; {state}"
        yield finding("GENERATION_CONFIG_MISSING", GENERATION_CONFIG_FILE, message)
        return
    eos = document.data.get("eos_token_id")
    ids = eos if isinstance(eos, list) else [eos]
    missing = [token for token in GPT_OSS_EOS_IDS if token not in ids]
    if missing:
        message = f"eos_token_id is {eos!r}: GPT-OSS needs {expected} (missing {missing})"
        yield finding("GENERATION_CONFIG_EOS", GENERATION_CONFIG_FILE, message)
