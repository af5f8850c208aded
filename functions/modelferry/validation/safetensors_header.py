"""Parse and check a safetensors header from two ranged reads: the 8-byte length, then the JSON header.

The checks are the ones the safetensors loader makes before touching data (format: 8-byte little-endian header
length, a JSON object of tensor name -> {dtype, shape, data_offsets}, then the tensor bytes), so a header that
passes here is one Bedrock's loader can open, as long as the data bytes themselves are intact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

# safetensors refuses headers above 100 MB; a larger length means the first 8 bytes are not a header length.
MAX_HEADER_BYTES = 100_000_000

# Bits per element of every dtype the safetensors format defines.
DTYPE_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


class HeaderError(ValueError):
    """The header cannot be read or disagrees with itself or the file size. The message says how."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int  # offsets into the data section (after the header)
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    header_bytes: int
    tensors: dict[str, TensorInfo]


def read_header(read_range: Callable[[int, int], bytes], file_size: int) -> SafetensorsHeader:
    """Read and check the header of a file of `file_size` bytes; `read_range(start, length)` reads the file."""
    if file_size < 8:
        raise HeaderError(f"the file is {file_size} bytes: too short for the 8-byte header length")
    header_bytes = int.from_bytes(read_range(0, 8), "little")
    if header_bytes > MAX_HEADER_BYTES or 8 + header_bytes > file_size:
        raise HeaderError(f"the header length field says {header_bytes} bytes, the file is {file_size} bytes")
    raw = read_range(8, header_bytes)
    if len(raw) != header_bytes:
        raise HeaderError(f"read {len(raw)} of the {header_bytes} header bytes")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"the header is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise HeaderError("the header is not a JSON object")
    document.pop("__metadata__", None)
    tensors = {name: _tensor_info(name, entry) for name, entry in document.items()}
    _check_layout(tensors, data_bytes=file_size - 8 - header_bytes)
    return SafetensorsHeader(header_bytes=header_bytes, tensors=tensors)


def _tensor_info(name: str, entry: object) -> TensorInfo:
    if not isinstance(entry, dict):
        raise HeaderError(f"tensor {name!r}: entry is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise HeaderError(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise HeaderError(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise HeaderError(f"tensor {name!r}: data_offsets {offsets!r} is not [start, end]")
    start, end = offsets
    expected_bits = math.prod(shape) * DTYPE_BITS[dtype]
    if end < start or expected_bits != 8 * (end - start):
        raise HeaderError(
            f"tensor {name!r}: {dtype} {shape} needs {expected_bits / 8:g} bytes, data_offsets span {end - start}"
        )
    return TensorInfo(dtype=dtype, shape=tuple(shape), start=start, end=end)


def _check_layout(tensors: dict[str, TensorInfo], data_bytes: int) -> None:
    """Tensors must tile the data section exactly: no gap, no overlap, nothing past the end of the file."""
    position = 0
    for name, tensor in sorted(tensors.items(), key=lambda item: (item[1].start, item[1].end)):
        if tensor.start != position:
            raise HeaderError(f"tensor {name!r} starts at data offset {tensor.start}, expected {position}")
        position = tensor.end
    if position != data_bytes:
        raise HeaderError(f"the tensors cover {position} data bytes, the file holds {data_bytes} after the header")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
