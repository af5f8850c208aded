"""The safetensors header parser: what the real library writes parses; every kind of damage is a HeaderError."""

from __future__ import annotations

import contextlib
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save

from modelferry.validation.safetensors_header import HeaderError, read_header
from modelferry_cli.local.model_factory import safetensors_bytes

TENSORS = {"a": ("BF16", (4, 8)), "b": ("F32", (3,)), "c": ("U8", (2, 2, 16))}


def parse(data: bytes):
    return read_header(lambda start, length: data[start : start + length], len(data))


def with_header(header: dict, data_bytes: int) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(data_bytes)


def test_parses_what_the_safetensors_library_writes():
    data = save({"w": np.zeros((3, 5), dtype=np.float16), "b": np.ones(7, dtype=np.float32)}, metadata={"k": "v"})
    header = parse(data)
    assert header.tensors["w"].dtype == "F16"
    assert header.tensors["w"].shape == (3, 5)
    assert header.tensors["b"].end - header.tensors["b"].start == 28
    assert set(header.tensors) == {"w", "b"}  # __metadata__ is not a tensor


def test_parses_the_model_factory_files_and_reads_only_the_header():
    data = safetensors_bytes(TENSORS, metadata={"format": "pt"})
    reads: list[tuple[int, int]] = []

    def read(start: int, length: int) -> bytes:
        reads.append((start, length))
        return data[start : start + length]

    header = read_header(read, len(data))
    assert {name: (t.dtype, t.shape) for name, t in header.tensors.items()} == TENSORS
    assert reads == [(0, 8), (8, header.header_bytes)]


def test_a_file_without_tensors_is_valid():
    assert parse(with_header({"__metadata__": {"format": "pt"}}, 0)).tensors == {}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 200_000_000) + b"{}", "header length field says 200000000"),
        (struct.pack("<Q", 64) + b"{}", "header length field says 64"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not JSON"),
        (with_header([], 0), "not a JSON object"),  # type: ignore[arg-type]
        (with_header({"t": ["F16"]}, 0), "entry is not an object"),
        (with_header({"t": {"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 2]}}, 2), "unknown dtype"),
        (with_header({"t": {"dtype": "F16", "shape": [-1], "data_offsets": [0, 2]}}, 2), "shape"),
        (with_header({"t": {"dtype": "F16", "shape": [2], "data_offsets": [0]}}, 2), "data_offsets"),
        (with_header({"t": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 8]}}, 8), "needs 12 bytes"),
        (
            with_header(
                {
                    "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                    "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]},
                },
                6,
            ),
            "starts at data offset 2, expected 4",
        ),
        (with_header({"t": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}, 8), "starts at data offset 4"),
        (with_header({"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, 10), "cover 4 data bytes"),
        (safetensors_bytes(TENSORS)[:-1], "the file holds"),
    ],
    ids=[
        "shorter-than-length-field",
        "absurd-length",
        "length-past-end",
        "not-utf8",
        "json-list",
        "entry-not-object",
        "unknown-dtype",
        "negative-dim",
        "one-offset",
        "size-disagrees-with-shape",
        "overlap",
        "gap",
        "trailing-bytes",
        "truncated-data",
    ],
)
def test_damage_is_a_header_error_that_says_what(data: bytes, reason: str):
    with pytest.raises(HeaderError, match=reason):
        parse(data)


def test_sub_byte_dtypes_are_sized_in_bits():
    assert parse(with_header({"t": {"dtype": "F4", "shape": [2, 16], "data_offsets": [0, 16]}}, 16)).tensors


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0), mode=st.sampled_from(["truncate", "flip"]))
def test_any_damage_is_reported_as_a_header_error_never_a_crash(cut: int, flip: int, mode: str):
    data = bytearray(safetensors_bytes(TENSORS))
    if mode == "truncate":
        del data[cut % len(data) :]
    else:
        data[flip % len(data)] ^= 0xFF
    with contextlib.suppress(HeaderError):
        parse(bytes(data))
