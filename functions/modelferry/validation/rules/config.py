"""Rules on config.json and generation_config.json: is this a model Bedrock imports at all?"""

from __future__ import annotations

from collections.abc import Iterator

from modelferry.validation.bedrock import (
    CONFIG_FILE,
    GENERATION_CONFIG_FILE,
    GENERATIVE_ARCHITECTURE_SUFFIXES,
    GPT_OSS_EOS_IDS,
    MAX_CONTEXT_LENGTH,
    REQUIRED_ARCHITECTURES,
    SUPPORTED_MODEL_TYPES,
)
from modelferry.validation.findings import Finding, Severity, finding
from modelferry.validation.options import ValidationOptions
from modelferry.validation.view import ModelView


def config_readable(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    document = view.json(CONFIG_FILE)
    if not document.present:
        yield finding("CONFIG_MISSING", CONFIG_FILE, "no config.json among the files to copy")
    elif document.error:
        yield finding("CONFIG_INVALID", CONFIG_FILE, document.error)
    elif view.config is None:
        yield finding("CONFIG_INVALID", CONFIG_FILE, "config.json has no string `model_type`")


def architecture_supported(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    model_type, architectures = view.model_type, view.architectures
    if model_type is None:
        return
    listed = ", ".join(architectures) or "no architectures"
    required = REQUIRED_ARCHITECTURES.get(model_type)
    if model_type not in SUPPORTED_MODEL_TYPES:
        message = f"model_type {model_type!r} ({listed}) is not an architecture Bedrock imports"
    elif required and not required.intersection(architectures):
        message = f"{model_type} imports only as {', '.join(sorted(required))}; config.json lists {listed}"
    elif architectures and not any(a.endswith(GENERATIVE_ARCHITECTURE_SUFFIXES) for a in architectures):
        message = f"{listed} has no generation head: embedding models are not supported"
    else:
        return
    yield finding("ARCHITECTURE_UNSUPPORTED", CONFIG_FILE, message)


def quantization_declared(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    quantization = view.config.get("quantization_config") if view.config else None
    if not quantization:
        return
    method = quantization.get("quant_method", "unnamed") if isinstance(quantization, dict) else "unnamed"
    message = f"config.json declares a {method} quantization_config"
    if options.allow_quantized:
        yield finding(
            "QUANTIZATION_UNSUPPORTED",
            CONFIG_FILE,
            f"{message}; allowed by the option, but no AWS statement says it imports",
            Severity.WARNING,
        )
    else:
        yield finding("QUANTIZATION_UNSUPPORTED", CONFIG_FILE, message)


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
    if not document.present:
        message = f"GPT-OSS needs generation_config.json with eos_token_id {expected}; there is none to copy"
    elif document.error:
        message = document.error
    else:
        eos = document.data.get("eos_token_id") if document.data else None
        ids = eos if isinstance(eos, list) else [eos]
        missing = [token for token in GPT_OSS_EOS_IDS if token not in ids]
        if not missing:
            return
        message = f"eos_token_id is {eos!r}: GPT-OSS needs {expected} (missing {missing})"
    yield finding("GENERATION_CONFIG_EOS", GENERATION_CONFIG_FILE, message)
