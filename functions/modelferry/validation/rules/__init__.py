"""The rules, in the order their findings are reported. A rule is a function of the model view and the options
that yields findings; it never raises for a problem with the model."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from modelferry.validation.findings import Finding
from modelferry.validation.options import ValidationOptions
from modelferry.validation.rules.config import (
    adapter_repository,
    architecture_supported,
    config_readable,
    context_length,
    generation_config_eos,
    quantization_declared,
    transformers_version,
)
from modelferry.validation.rules.files import excluded_paths
from modelferry.validation.rules.region import import_region
from modelferry.validation.rules.tokenizer import chat_template, tokenizer_config, tokenizer_present
from modelferry.validation.rules.weights import (
    index_metadata,
    index_readable,
    index_shards,
    index_tensors,
    safetensors_headers,
    size_limit,
    tensor_dtypes,
    weights_are_safetensors,
)
from modelferry.validation.view import ModelView

Rule = Callable[[ModelView, ValidationOptions], Iterable[Finding]]

RULES: tuple[Rule, ...] = (
    config_readable,
    adapter_repository,
    architecture_supported,
    import_region,
    quantization_declared,
    weights_are_safetensors,
    index_readable,
    index_metadata,
    index_shards,
    safetensors_headers,
    index_tensors,
    tensor_dtypes,
    size_limit,
    context_length,
    transformers_version,
    generation_config_eos,
    tokenizer_present,
    tokenizer_config,
    chat_template,
    excluded_paths,
)
