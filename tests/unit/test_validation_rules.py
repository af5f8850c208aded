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
        "ARCHITECTURE_UNSUPPORTED",  # qwen3 imports only as Qwen3ForCausalLM
        lambda: generic_repo("qwen3", ["Qwen3ForConditionalGeneration"]),
        {("ARCHITECTURE_UNSUPPORTED", "config.json")},
    ),
    (
        "HEAD_NOT_GENERATIVE",
        lambda: generic_repo("qwen3", ["Qwen3ForSequenceClassification"]),
        {("HEAD_NOT_GENERATIVE", "config.json")},
    ),
    ("HEAD_NOT_GENERATIVE", repos.reward_model, {("HEAD_NOT_GENERATIVE", "config.json")}),
    (
        "HEAD_NOT_GENERATIVE",  # a token-classification (NER) fine-tune of Mistral
        lambda: generic_repo("mistral", ["MistralForTokenClassification"]),
        {("HEAD_NOT_GENERATIVE", "config.json")},
    ),
    # an embedding model on a supported backbone: base class (e5-mistral-7b-instruct) or sentence-transformers files
    ("EMBEDDING_MODEL_UNSUPPORTED", repos.e5_mistral, {("EMBEDDING_MODEL_UNSUPPORTED", "config.json")}),
    ("EMBEDDING_MODEL_UNSUPPORTED", repos.qwen3_embedding, {("EMBEDDING_MODEL_UNSUPPORTED", "config.json")}),
    ("LORA_ADAPTER_UNSUPPORTED", repos.peft_lora_adapter, {("LORA_ADAPTER_UNSUPPORTED", "adapter_config.json")}),
    (
        "LORA_ADAPTER_UNSUPPORTED",
        repos.peft_lora_adapter_with_base_config,
        {("LORA_ADAPTER_UNSUPPORTED", "adapter_config.json")},
    ),
    (
        "QUANTIZATION_UNSUPPORTED",  # declared and confirmed by the tensors (packed I32 weights)
        repos.llama_awq,
        {("QUANTIZATION_UNSUPPORTED", "config.json"), ("DTYPE_UNSUPPORTED", "model.safetensors")},
    ),
    (
        "QUANTIZATION_CONFIG_STALE",
        lambda: edit_json(llama(), "config.json", quantization_config={"quant_method": "bitsandbytes"}),
        {("QUANTIZATION_CONFIG_STALE", "config.json")},
    ),
    ("QUANTIZATION_CONFIG_STALE", repos.qwen3_fp8_base_finetune, {("QUANTIZATION_CONFIG_STALE", "config.json")}),
    (
        "TRANSFORMERS_VERSION_NEWER",
        repos.qwen3_saved_by_newer_transformers,
        {("TRANSFORMERS_VERSION_NEWER", "config.json")},
    ),
    (
        "TRANSFORMERS_VERSION_NEWER",  # GPT-OSS is measured against the release that introduced it, 4.55.0
        lambda: edit_json(
            gpt_oss_repo(index_total_parameters=False), "config.json", transformers_version="4.57.0.dev0"
        ),
        {("TRANSFORMERS_VERSION_NEWER", "config.json")},
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
    ("GENERATION_CONFIG_EOS", repos.gpt_oss_two_eos_ids, {("GENERATION_CONFIG_EOS", "generation_config.json")}),
    (
        "GENERATION_CONFIG_EOS",  # a single id, as some trainers write it
        lambda: edit_json(repos.gpt_oss_two_eos_ids(), "generation_config.json", eos_token_id=200002),
        {("GENERATION_CONFIG_EOS", "generation_config.json")},
    ),
    (
        "GENERATION_CONFIG_MISSING",
        lambda: without(gpt_oss_repo(index_total_parameters=False), "generation_config.json"),
        {("GENERATION_CONFIG_MISSING", "generation_config.json")},
    ),
    (
        "GENERATION_CONFIG_MISSING",
        lambda: gpt_oss_repo(index_total_parameters=False) | {"generation_config.json": b"[200002]"},
        {("GENERATION_CONFIG_MISSING", "generation_config.json")},
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
# SIZE_LIMIT_EXCEEDED needs a sparse 100+ GB model: test_validation_sparse.py. The others need options: the Region
# (test_validation_regions.py), or an `include` that copies what the allow-list leaves out (below).
CODES_TESTED_ELSEWHERE = {
    "SIZE_LIMIT_EXCEEDED",
    "REGION_UNSUPPORTED",
    "ARCHITECTURE_REGION_UNSUPPORTED",
    "INDEX_SHARD_UNREFERENCED",
}


@pytest.mark.parametrize(("code", "build", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_code_on_its_fixture(tmp_path: Path, code: str, build: Callable[[], Files], expected: set):
    report = run(tmp_path, build())
    assert problems(report) == expected
    found = next(f for f in report.findings if f.code == code)
    assert found.message
    assert found.hint == CODES[code].hint
    assert found.to_json_dict()["source"] == CODES[code].source
    assert report.verdict == {"error": "failed", "fixable": "fixable", "warning": "ok"}[CODES[code].severity]


def test_every_code_has_a_fixture_and_a_documented_fix_hint():
    assert {case[0] for case in CASES} | CODES_TESTED_ELSEWHERE | {"PATH_EXCLUDED"} == set(CODES)
    documented = set(re.findall(r"^### `([A-Z_]+)`", DOCS.read_text(), flags=re.MULTILINE))
    assert documented == set(CODES)


def test_every_code_cites_its_source_in_the_catalogue_and_the_docs():
    sections = {
        section.split("`")[1]: section for section in re.split(r"^### ", DOCS.read_text(), flags=re.MULTILINE)[1:]
    }
    for code, entry in CODES.items():
        assert entry.source, code
        assert "*Source*:" in sections[code], f"{code}: its docs section names no source"
        # The catalogue's source is the docs' source: the same page title appears in both.
        title = re.search(r'"([^"]+)"', entry.source)
        if title:
            assert title.group(1) in " ".join(sections[code].split()), f"{code}: docs do not cite {title.group(1)}"


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
    (repos.with_adapter, "ok", set(), {"adapter_model.safetensors", "adapter_config.json"}),
    (
        repos.trainer_output,
        "ok",
        set(),
        {"checkpoint-500/model.safetensors", "optimizer.pt", "onnx/model.onnx", "adapter_model.safetensors"},
    ),
    (
        repos.gpt_oss_dequantized_finetune,
        "fixable",
        {
            ("QUANTIZATION_CONFIG_STALE", "config.json"),
            ("INDEX_METADATA_FIELD_UNSUPPORTED", INDEX),
            ("GENERATION_CONFIG_EOS", "generation_config.json"),
        },
        set(),
    ),
    (repos.llama31_base, "ok", {("CHAT_TEMPLATE_MISSING", None)}, set()),
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


def test_a_file_the_allow_list_leaves_out_is_copied_when_included(tmp_path: Path):
    options = ValidationOptions(selection=Selection(include=("adapter_model.safetensors",)))
    report = run(tmp_path, repos.with_adapter(), options)
    assert problems(report) == {("INDEX_SHARD_UNREFERENCED", "adapter_model.safetensors")}
    assert report.verdict == "ok"


def test_the_trainer_output_copies_only_what_bedrock_loads_and_counts_only_those_weights(tmp_path: Path):
    files = repos.trainer_output()
    report = run(tmp_path, files)
    excluded = dict(report.excluded)
    assert set(files) - set(excluded) == repos.loadable(files)
    assert report.files_checked == len(repos.loadable(files))
    assert report.total_weight_bytes == sum(len(files[s]) for s in shards(files) if s.startswith("model-"))
    reasons = {path: excluded[path] for path in ("checkpoint-500/model.safetensors", "optimizer.pt", "onnx/model.onnx")}
    assert "trainer checkpoint" in reasons["checkpoint-500/model.safetensors"]
    assert "training state" in reasons["optimizer.pt"]
    assert "ONNX" in reasons["onnx/model.onnx"]
    assert "LoRA adapter" in excluded["adapter_model.safetensors"]
    # Each reason is in a PATH_EXCLUDED finding too, with the file's size.
    messages = {f.path: f.message for f in report.findings if f.code == "PATH_EXCLUDED"}
    assert messages["optimizer.pt"] == f"{excluded['optimizer.pt']} ({len(files['optimizer.pt']):,} bytes)"


def test_a_stale_quantization_needs_every_header_to_prove_it(tmp_path: Path):
    files = repos.gpt_oss_dequantized_finetune()
    broken = repos.corrupt_header(files, shards(files)[0])
    report = run(tmp_path, broken)
    codes = {f.code for f in report.findings}
    assert "QUANTIZATION_CONFIG_STALE" not in codes
    assert {"QUANTIZATION_UNSUPPORTED", "SAFETENSORS_HEADER_INVALID"} <= codes


def test_mxfp4_tensors_confirm_the_quantization_even_when_allowed(tmp_path: Path):
    report = run(tmp_path, repos.gpt_oss_mxfp4(), ValidationOptions(allow_quantized=True))
    assert "QUANTIZATION_CONFIG_STALE" not in {f.code for f in report.findings}
    stale = run(tmp_path / "stale", repos.gpt_oss_dequantized_finetune(), ValidationOptions(allow_quantized=True))
    assert ("QUANTIZATION_CONFIG_STALE", Severity.FIXABLE) in {(f.code, f.severity) for f in stale.findings}


def test_bf16_tensors_named_like_scales_keep_the_quantization_declared(tmp_path: Path):
    """fp8 checkpoints dequantised badly keep `weight_scale_inv` tensors (in BF16): not proof of a stale config."""
    files = repos.qwen3_fp8_base_finetune()
    tensors = {
        "model.embed_tokens.weight": ("BF16", (512, 64)),
        "model.layers.0.mlp.up_proj.weight_scale_inv": ("BF16", (1, 1)),
    }
    files = without(files, INDEX, *shards(files)) | {"model.safetensors": safetensors_bytes(tensors)}
    report = run(tmp_path, files)
    assert problems(report) == {("QUANTIZATION_UNSUPPORTED", "config.json")}


def test_the_adapter_finding_names_the_base_model_to_merge_into(tmp_path: Path):
    report = run(tmp_path, repos.peft_lora_adapter())
    (adapter,) = report.by_severity(Severity.ERROR)
    assert "meta-llama/Llama-3.1-8B-Instruct" in adapter.message
    assert "LORA" in adapter.message
    assert "merge" in adapter.hint


def test_a_missing_chat_template_says_which_requests_still_work(tmp_path: Path):
    (warning,) = run(tmp_path, repos.llama31_base()).by_severity(Severity.WARNING)
    assert "chat-completions" in warning.message
    assert "completion requests" in warning.message
