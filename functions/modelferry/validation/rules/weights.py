"""Rules on the weights: format, the index and the shards it names, safetensors headers, dtypes and total size."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from modelferry.selection import (
    INDEX_FILE,
    OTHER_WEIGHT_SUFFIXES,
    SAFETENSORS_SUFFIX,
)
from modelferry.validation.bedrock import (
    MULTIMODAL_MODEL_TYPES,
    MULTIMODAL_WEIGHT_LIMIT_BYTES,
    QUANTIZED_TENSOR_SUFFIXES,
    SUPPORTED_DTYPES,
    TEXT_WEIGHT_LIMIT_BYTES,
)
from modelferry.validation.findings import Finding, Severity, finding
from modelferry.validation.fixes import clean_index_metadata
from modelferry.validation.options import ValidationOptions
from modelferry.validation.safetensors_header import HeaderError
from modelferry.validation.view import ModelView

EXAMPLES = 3  # names quoted in a message before "..."


def weights_are_safetensors(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    if view.safetensors or view.is_adapter_repository:  # an adapter's missing weights are its own finding
        return
    weight_suffixes = (SAFETENSORS_SUFFIX, *OTHER_WEIGHT_SUFFIXES)
    others = [file.path for file, _ in view.excluded if file.path.endswith(weight_suffixes)]
    found = f"; not copied: {_examples(others)}" if others else ""
    yield finding("WEIGHTS_NOT_SAFETENSORS", others[0] if others else None, f"no .safetensors weights to copy{found}")


def index_readable(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    document = view.json(INDEX_FILE)
    if not document.present:
        # A single model.safetensors needs no index; several files do, or Bedrock cannot find the tensors.
        if len(view.safetensors) > 1:
            message = f"{len(view.safetensors)} .safetensors files and no {INDEX_FILE} to say which tensor is where"
            yield finding("INDEX_INVALID", INDEX_FILE, message)
    elif document.error:
        yield finding("INDEX_INVALID", INDEX_FILE, document.error)
    elif view.weight_map is None:
        yield finding("INDEX_INVALID", INDEX_FILE, "no non-empty `weight_map` of tensor name -> shard file name")


def index_metadata(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    index = view.json(INDEX_FILE).data
    if index is None:
        return
    metadata = index.get("metadata")
    if not isinstance(metadata, dict):
        state = "no root `metadata`" if metadata is None else f"a root `metadata` that is not an object: {metadata!r}"
        yield finding("INDEX_METADATA_MISSING", INDEX_FILE, f"the index has {state}")
    elif metadata != clean_index_metadata(metadata):
        fields = ", ".join(sorted(key for key in metadata if key != "total_size")) or "a non-integer total_size"
        yield finding(
            "INDEX_METADATA_FIELD_UNSUPPORTED",
            INDEX_FILE,
            f"the index metadata carries {fields}: Bedrock accepts only `total_size`",
        )


def index_shards(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    if view.weight_map is None:
        return
    tensors_per_shard = Counter(view.weight_map.values())
    excluded = {file.path: reason for file, reason in view.excluded}
    for shard, count in sorted(tensors_per_shard.items()):
        if view.has(shard):
            continue
        where = f"excluded ({excluded[shard]})" if shard in excluded else "not among the files"
        yield finding("INDEX_SHARD_MISSING", shard, f"the index maps {count} tensors to this shard, which is {where}")
    for path in view.safetensors:
        if path not in tensors_per_shard:
            yield finding(
                "INDEX_SHARD_UNREFERENCED",
                path,
                f"not named in {INDEX_FILE}: {view.files[path].size:,} bytes copied and never loaded",
            )


def index_tensors(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    if view.weight_map is None:
        return
    names_per_shard: dict[str, list[str]] = defaultdict(list)
    for name, shard in view.weight_map.items():
        names_per_shard[shard].append(name)
    for shard, names in sorted(names_per_shard.items()):
        header = view.headers.get(shard)
        if header is None or isinstance(header, HeaderError):
            continue  # reported as a missing shard or an invalid header
        missing = [name for name in names if name not in header.tensors]
        if missing:
            yield finding(
                "INDEX_TENSOR_MISSING",
                shard,
                f"{len(missing)} of the {len(names)} tensors the index maps here are not in its header: "
                f"{_examples(missing)}",
            )


def safetensors_headers(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    for path, header in view.headers.items():
        if isinstance(header, HeaderError):
            yield finding("SAFETENSORS_HEADER_INVALID", path, str(header))


def tensor_dtypes(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    declared = bool(view.config and view.config.get("quantization_config"))
    # Packed integer and fp8/fp4 tensors are what a declared quantization looks like: the user allowed that.
    severity = Severity.WARNING if options.allow_quantized and declared else None
    for path, header in view.headers.items():
        if isinstance(header, HeaderError):
            continue
        other = Counter(t.dtype for t in header.tensors.values() if t.dtype not in SUPPORTED_DTYPES)
        if other:
            counts = ", ".join(f"{count} {dtype}" for dtype, count in sorted(other.items()))
            example = next(name for name, t in header.tensors.items() if t.dtype not in SUPPORTED_DTYPES)
            message = f"tensors in {counts} (e.g. {example}); Bedrock is documented for BF16, F16 and F32"
            yield finding("DTYPE_UNSUPPORTED", path, message, severity)


def tensors_prove_unquantized(view: ModelView) -> str | None:
    """How the safetensors headers show the weights are not quantized (a readable header for every file, only
    BF16/F16/F32 tensors, none named like quantization blocks, scales or packed weights); None when they do not."""
    headers = list(view.headers.values())
    if not headers or any(isinstance(header, HeaderError) for header in headers):
        return None
    tensors = [
        (name, tensor)
        for header in headers
        if not isinstance(header, HeaderError)
        for name, tensor in header.tensors.items()
    ]
    if not tensors:
        return None
    if any(t.dtype not in SUPPORTED_DTYPES or name.endswith(QUANTIZED_TENSOR_SUFFIXES) for name, t in tensors):
        return None
    dtypes = "/".join(sorted({t.dtype for _, t in tensors}))
    return (
        f"all {len(tensors)} tensors in the {len(headers)} weight files are {dtypes}, with no quantization blocks, "
        "scales or packed weights"
    )


def size_limit(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    multimodal = view.model_type in MULTIMODAL_MODEL_TYPES
    limit = MULTIMODAL_WEIGHT_LIMIT_BYTES if multimodal else TEXT_WEIGHT_LIMIT_BYTES
    total = view.total_weight_bytes
    if total >= limit:
        kind = "multimodal" if multimodal else "text"
        yield finding(
            "SIZE_LIMIT_EXCEEDED",
            None,
            f"{total / 1e9:.1f} GB of safetensors weights; {kind} models must stay under {limit / 1e9:.0f} GB",
        )


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:EXAMPLES])
    return shown if len(names) <= EXAMPLES else f"{shown}... ({len(names)} in all)"
