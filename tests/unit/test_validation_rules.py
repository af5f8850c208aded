"""Every finding code, each on a fixture repository that triggers it and nothing else; real-shaped repositories
with the verdict Bedrock would give them. Run on a local folder (the other sources: test_validation_sources.py)."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from modelferry.selection import Selection
from modelferry.validation import CODES, LocalFolderSource, Severity, ValidationOptions, ValidationReport, validate
from modelferry_cli.local.model_factory import generic_repo, gpt_oss_repo, safetensors_bytes, write_repo
from tests.support import validation_repos as repos
from tests.support.validation_repos import INDEX, Files, edit_json, shards, without

DOCS = Path(__file__).parents[2] / "docs" / "validation.md"


def llama() -> Files:
    return generic_repo("llama", ["LlamaForCausalLM"], num_shards=3)


def first_shard() -> str:
    return shards(llama())[0]


def run(tmp_path: Path, files: Files, options: ValidationOptions | None = None) -> ValidationReport:
    return validate(LocalFolderSource(write_repo(files, tmp_path / "repo")), options)


def problems(report: ValidationReport) -> set[tuple[str, str | None]]:
    return {(f.code, f.path) for f in report.findings if f.severity is not Severity.INFO}


def extra_tensor_in_index() -> Files:
    files = llama()
    index = json.loads(files[INDEX])
    index["weight_map"]["model.layers.7.mlp.gate_proj.weight"] = first_shard()
    return files | {INDEX: json.dumps(index).encode()}


def fp8_without_quantization_config() -> Files:
    tensors = {
        "model.embed_tokens.weight": ("BF16", (512, 64)),
        "model.layers.0.mlp.up_proj.weight": ("F8_E4M3", (128, 64)),
    }
    return without(llama(), INDEX, *shards(llama())) | {"model.safetensors": safetensors_bytes(tensors)}


# (code, fixture, the non-info findings it must produce: exactly these)
CASES: list[tuple[str, Callable[[], Files], set[tuple[str, str | None]]]] = [
    ("CONFIG_MISSING", lambda: without(llama(), "config.json"), {("CONFIG_MISSING", "config.json")}),
    ("CONFIG_INVALID", lambda: llama() | {"config.json": b'{"model_type": '}, {("CONFIG_INVALID", "config.json")}),
    (
        "CONFIG_INVALID",
        lambda: edit_json(llama(), "config.json", model_type=None),
        {("CONFIG_INVALID", "config.json")},
    ),
    ("ARCHITECTURE_UNSUPPORTED", repos.phi3, {("ARCHITECTURE_UNSUPPORTED", "config.json")}),
    (
        "ARCHITECTURE_UNSUPPORTED",
        lambda: generic_repo("qwen3", ["Qwen3ForSequenceClassification"]),
        {("ARCHITECTURE_UNSUPPORTED", "config.json")},
    ),
    (
        "ARCHITECTURE_UNSUPPORTED",  # an embedding model on a supported backbone (e5-mistral-7b-instruct)
        lambda: generic_repo("mistral", ["MistralModel"]),
        {("ARCHITECTURE_UNSUPPORTED", "config.json")},
    ),
    (
        "QUANTIZATION_UNSUPPORTED",
        lambda: edit_json(llama(), "config.json", quantization_config={"quant_method": "bitsandbytes"}),
        {("QUANTIZATION_UNSUPPORTED", "config.json")},
    ),
    (
        "WEIGHTS_NOT_SAFETENSORS",
        repos.pytorch_bin_only,
        {("WEIGHTS_NOT_SAFETENSORS", "pytorch_model-00001-of-00002.bin")},
    ),
    ("INDEX_INVALID", lambda: llama() | {INDEX: b"not json"}, {("INDEX_INVALID", INDEX)}),
    ("INDEX_INVALID", lambda: edit_json(llama(), INDEX, weight_map=None), {("INDEX_INVALID", INDEX)}),
    ("INDEX_INVALID", lambda: without(llama(), INDEX), {("INDEX_INVALID", INDEX)}),
    (
        "INDEX_METADATA_MISSING",
        lambda: edit_json(llama(), INDEX, metadata=None),
        {("INDEX_METADATA_MISSING", INDEX)},
    ),
    (
        "INDEX_METADATA_FIELD_UNSUPPORTED",
        repos.gpt_oss_bf16_finetune,
        {("INDEX_METADATA_FIELD_UNSUPPORTED", INDEX)},
    ),
    (
        "INDEX_METADATA_FIELD_UNSUPPORTED",
        lambda: edit_json(llama(), INDEX, metadata={"total_size": "279168"}),
        {("INDEX_METADATA_FIELD_UNSUPPORTED", INDEX)},
    ),
    ("INDEX_SHARD_MISSING", repos.missing_shard, {("INDEX_SHARD_MISSING", "model-00002-of-00004.safetensors")}),
    (
        "INDEX_SHARD_UNREFERENCED",
        repos.with_adapter,
        {("INDEX_SHARD_UNREFERENCED", "adapter_model.safetensors")},
    ),
    ("INDEX_TENSOR_MISSING", extra_tensor_in_index, {("INDEX_TENSOR_MISSING", "model-00001-of-00003.safetensors")}),
    (
        "SAFETENSORS_HEADER_INVALID",
        repos.corrupt_shard,
        {("SAFETENSORS_HEADER_INVALID", "model-00001-of-00004.safetensors")},
    ),
    (
        "DTYPE_UNSUPPORTED",
        fp8_without_quantization_config,
        {("DTYPE_UNSUPPORTED", "model.safetensors")},
    ),
    ("TOKENIZER_MISSING", lambda: without(llama(), "tokenizer.json"), {("TOKENIZER_MISSING", "tokenizer.json")}),
    (
        "TOKENIZER_CONFIG_MISSING",
        lambda: without(llama(), "tokenizer_config.json"),
        {("TOKENIZER_CONFIG_MISSING", "tokenizer_config.json")},
    ),
    (
        "TOKENIZER_CONFIG_MISSING",
        lambda: llama() | {"tokenizer_config.json": b"\xff"},
        {("TOKENIZER_CONFIG_MISSING", "tokenizer_config.json")},
    ),
    (
        "TOKENIZER_CLASS_UNSUPPORTED",
        lambda: generic_repo("llama", ["LlamaForCausalLM"], tokenizer_class="GemmaTokenizerFast"),
        {("TOKENIZER_CLASS_UNSUPPORTED", "tokenizer_config.json")},
    ),
    (
        "CHAT_TEMPLATE_MISSING",
        lambda: generic_repo("llama", ["LlamaForCausalLM"], chat_template=None),
        {("CHAT_TEMPLATE_MISSING", None)},
    ),
    (
        "GENERATION_CONFIG_EOS",
        lambda: gpt_oss_repo(eos_ids=(200002, 199999), index_total_parameters=False),
        {("GENERATION_CONFIG_EOS", "generation_config.json")},
    ),
    (
        "GENERATION_CONFIG_EOS",
        lambda: without(gpt_oss_repo(index_total_parameters=False), "generation_config.json"),
        {("GENERATION_CONFIG_EOS", "generation_config.json")},
    ),
    (
        "CONTEXT_LENGTH_EXCEEDED",
        lambda: generic_repo("qwen3", ["Qwen3ForCausalLM"], config_overrides={"max_position_embeddings": 262144}),
        {("CONTEXT_LENGTH_EXCEEDED", "config.json")},
    ),
    (
        "CONTEXT_LENGTH_EXCEEDED",  # multimodal configs keep it in text_config
        lambda: edit_json(llama(), "config.json", text_config={"max_position_embeddings": 1048576}),
        {("CONTEXT_LENGTH_EXCEEDED", "config.json")},
    ),
]
# Needs a sparse 100+ GB model: test_validation_sparse.py.
CODES_TESTED_ELSEWHERE = {"SIZE_LIMIT_EXCEEDED"}


@pytest.mark.parametrize(("code", "build", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_code_on_its_fixture(tmp_path: Path, code: str, build: Callable[[], Files], expected: set):
    report = run(tmp_path, build())
    assert problems(report) == expected
    found = next(f for f in report.findings if f.code == code)
    assert found.message
    assert found.hint == CODES[code].hint
    assert report.verdict == {"error": "failed", "fixable": "fixable", "warning": "ok"}[CODES[code].severity]


def test_every_code_has_a_fixture_and_a_documented_fix_hint():
    assert {case[0] for case in CASES} | CODES_TESTED_ELSEWHERE | {"PATH_EXCLUDED"} == set(CODES)
    documented = set(re.findall(r"^### `([A-Z_]+)`", DOCS.read_text(), flags=re.MULTILINE))
    assert documented == set(CODES)


# --- real-shaped repositories --------------------------------------------------------------------------------------

REAL_SHAPED = [
    (repos.llama31_instruct, "ok", set(), {"original/consolidated.00.pth", "USE_POLICY.md", "LICENSE"}),
    (repos.qwen25_instruct, "ok", set(), {"LICENSE", "README.md"}),
    (repos.qwen3_moe, "ok", set(), {".gitattributes"}),
    (repos.mistral_instruct, "ok", set(), {"consolidated.safetensors"}),
    (
        repos.gpt_oss_mxfp4,
        "failed",
        {
            ("QUANTIZATION_UNSUPPORTED", "config.json"),
            ("INDEX_METADATA_FIELD_UNSUPPORTED", INDEX),
            ("DTYPE_UNSUPPORTED", "model-00001-of-00002.safetensors"),  # the first holds the bf16 embeddings
            ("DTYPE_UNSUPPORTED", "model-00002-of-00002.safetensors"),
        },
        {"metal/model.bin", "original/model.safetensors", "original/config.json"},
    ),
    (repos.gpt_oss_bf16_finetune, "fixable", {("INDEX_METADATA_FIELD_UNSUPPORTED", INDEX)}, set()),
    (
        repos.pytorch_bin_only,
        "failed",
        {("WEIGHTS_NOT_SAFETENSORS", "pytorch_model-00001-of-00002.bin")},
        {"pytorch_model-00002-of-00002.bin"},
    ),
    (
        repos.bert,
        "failed",
        {
            ("ARCHITECTURE_UNSUPPORTED", "config.json"),
            ("TOKENIZER_CLASS_UNSUPPORTED", "tokenizer_config.json"),
            ("CHAT_TEMPLATE_MISSING", None),
        },
        {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"},
    ),
    (repos.phi3, "failed", {("ARCHITECTURE_UNSUPPORTED", "config.json")}, set()),
    (repos.missing_shard, "failed", {("INDEX_SHARD_MISSING", "model-00002-of-00004.safetensors")}, set()),
    (repos.corrupt_shard, "failed", {("SAFETENSORS_HEADER_INVALID", "model-00001-of-00004.safetensors")}, set()),
]


@pytest.mark.parametrize(
    ("build", "verdict", "expected", "excluded"), REAL_SHAPED, ids=[case[0].__name__ for case in REAL_SHAPED]
)
def test_real_shaped_repositories(tmp_path: Path, build, verdict: str, expected: set, excluded: set):
    report = run(tmp_path, build())
    assert report.verdict == verdict
    assert problems(report) == expected
    assert excluded <= {f.path for f in report.findings if f.code == "PATH_EXCLUDED"}


def test_gpt_oss_mxfp4_with_quantization_allowed_only_needs_the_index_fix(tmp_path: Path):
    report = run(tmp_path, repos.gpt_oss_mxfp4(), ValidationOptions(allow_quantized=True))
    assert report.verdict == "fixable"
    assert {f.code for f in report.by_severity(Severity.WARNING)} == {"QUANTIZATION_UNSUPPORTED", "DTYPE_UNSUPPORTED"}


def test_allowing_quantization_does_not_excuse_undeclared_low_precision_tensors(tmp_path: Path):
    report = run(tmp_path, fp8_without_quantization_config(), ValidationOptions(allow_quantized=True))
    assert report.verdict == "failed"


def test_report_summarises_the_model(tmp_path: Path):
    files = repos.llama31_instruct()
    report = run(tmp_path, files)
    assert report.model_type == "llama"
    assert report.architectures == ["LlamaForCausalLM"]
    assert report.total_weight_bytes == sum(len(files[s]) for s in shards(files))
    assert report.headers_read == 4
    document = report.to_json_dict()
    assert document["verdict"] == "ok"
    assert document["counts"]["error"] == 0
    assert all(set(f) >= {"code", "severity", "path", "message"} for f in document["findings"])
    json.dumps(document)


def test_reads_the_small_files_and_the_headers_and_nothing_else(tmp_path: Path):
    files = repos.llama31_instruct()
    report = run(tmp_path, files)
    small = sum(len(files[p]) for p in ("config.json", INDEX, "tokenizer_config.json"))
    headers = sum(8 + struct.unpack("<Q", files[s][:8])[0] for s in shards(files))
    assert report.bytes_read == small + headers


def test_a_single_model_safetensors_needs_no_index(tmp_path: Path):
    report = run(tmp_path, generic_repo("qwen2", ["Qwen2ForCausalLM"], num_shards=1))
    assert report.verdict == "ok"
    assert report.headers_read == 1


def test_a_shard_the_user_excluded_is_a_missing_shard_that_says_why(tmp_path: Path):
    files = llama()
    options = ValidationOptions(selection=Selection(exclude=(first_shard(),)))
    report = run(tmp_path, files, options)
    missing = next(f for f in report.findings if f.code == "INDEX_SHARD_MISSING")
    assert "exclude" in missing.message
    assert ("PATH_EXCLUDED", first_shard()) in {(f.code, f.path) for f in report.findings}
