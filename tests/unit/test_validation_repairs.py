"""The repairs AWS documents beyond the index: the GPT-OSS end-of-sequence ids and a stale `quantization_config`,
each found the same way on a folder, the Hub and S3, fixed in place on a folder and on S3 (original kept, both
hashes reported), idempotent, and leaving a model the rules accept."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from modelferry.adapters.hub import HubClient
from modelferry.validation import (
    HubRepoSource,
    LocalFolderSource,
    S3PrefixSource,
    Severity,
    ValidationOptions,
    apply_fixes,
    validate,
)
from modelferry.validation.fixes import fix_gpt_oss_eos_ids, fix_stale_quantization_config
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import write_repo
from tests.support import validation_repos as repos
from tests.support.validation_repos import INDEX, Files, edit_json

BUCKET = "models"
GENERATION = "generation_config.json"
CONFIG = "config.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def upload(s3, prefix: str, files: Files) -> None:
    """As the copy stage leaves a model: the Hub's sha256 in each object's metadata."""
    for path, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=prefix + path, Body=data, Metadata={"sha256": sha256(data)})


# (repository, {path: code} of its fixable findings)
REPAIRABLE: list[tuple[Callable[[], Files], dict[str, str]]] = [
    (repos.gpt_oss_two_eos_ids, {GENERATION: "GENERATION_CONFIG_EOS"}),
    (repos.qwen3_fp8_base_finetune, {CONFIG: "QUANTIZATION_CONFIG_STALE"}),
    (
        repos.gpt_oss_dequantized_finetune,
        {
            CONFIG: "QUANTIZATION_CONFIG_STALE",
            GENERATION: "GENERATION_CONFIG_EOS",
            INDEX: "INDEX_METADATA_FIELD_UNSUPPORTED",
        },
    ),
]
IDS = [build.__name__ for build, _ in REPAIRABLE]


def fixable(report) -> dict[str, str]:
    return {f.path: f.code for f in report.by_severity(Severity.FIXABLE)}


@pytest.mark.parametrize(("build", "expected"), REPAIRABLE, ids=IDS)
def test_found_alike_on_a_folder_the_hub_and_s3(tmp_path: Path, s3, build, expected):
    files = build()
    upload(s3, "models/m/", files)
    with LocalHub() as hub:
        commit = hub.add_repo("org/model", files)
        reports = [
            validate(LocalFolderSource(write_repo(files, tmp_path))),
            validate(HubRepoSource(HubClient(hub.url), "org/model", commit)),
            validate(S3PrefixSource(s3, BUCKET, "models/m/")),
        ]
    for report in reports:
        assert report.verdict == "fixable"
        assert fixable(report) == expected
        assert report.findings == reports[0].findings


@pytest.mark.parametrize(("build", "expected"), REPAIRABLE, ids=IDS)
def test_folder_repair_keeps_the_original_and_a_second_run_changes_nothing(tmp_path: Path, build, expected):
    files = build()
    source = LocalFolderSource(write_repo(files, tmp_path))
    report = validate(source)

    applied = apply_fixes(source, report)

    assert {fix.path: fix.rule_code for fix in applied} == expected
    for fix in applied:
        assert (tmp_path / f"{fix.path}.orig").read_bytes() == files[fix.path]
        assert fix.original_sha256 == sha256(files[fix.path])
        assert fix.fixed_sha256 == sha256((tmp_path / fix.path).read_bytes())
    after = validate(source)
    assert after.verdict == "ok"
    assert not after.by_severity(Severity.FIXABLE)
    repaired = {path: (tmp_path / path).read_bytes() for path in expected}
    assert apply_fixes(source, report) == []  # the stale report again: nothing left to change
    assert {path: (tmp_path / path).read_bytes() for path in expected} == repaired
    assert {path: (tmp_path / f"{path}.orig").read_bytes() for path in expected} == {p: files[p] for p in expected}


def test_the_eos_repair_sets_the_documented_ids_and_keeps_the_rest(tmp_path: Path):
    files = edit_json(repos.gpt_oss_two_eos_ids(), GENERATION, eos_token_id=[200002, 199999, 7])
    source = LocalFolderSource(write_repo(files, tmp_path))
    apply_fixes(source, validate(source))
    before, after = json.loads(files[GENERATION]), json.loads((tmp_path / GENERATION).read_bytes())
    assert after["eos_token_id"] == [200002, 199999, 200012, 7]
    assert {k: v for k, v in after.items() if k != "eos_token_id"} == {
        k: v for k, v in before.items() if k != "eos_token_id"
    }
    assert list(after) == list(before)  # key order kept


def test_the_stale_quantization_repair_removes_only_that_field():
    config = json.loads(repos.gpt_oss_dequantized_finetune()[CONFIG])
    fixed = json.loads(fix_stale_quantization_config(json.dumps(config).encode()) or b"{}")
    assert "quantization_config" not in fixed
    assert fixed == {k: v for k, v in config.items() if k != "quantization_config"}
    assert fix_stale_quantization_config(json.dumps(fixed).encode()) is None


@pytest.mark.parametrize("eos", [[200002, 199999, 200012], [200012, 200002, 199999, 5]])
def test_the_eos_repair_leaves_a_complete_list_alone(eos):
    assert fix_gpt_oss_eos_ids(json.dumps({"eos_token_id": eos}).encode()) is None


def test_s3_repair_keeps_the_originals_under_the_run_prefix_and_the_provenance(s3):
    files = repos.gpt_oss_dequantized_finetune()
    prefix = "models/ft/abc/"
    upload(s3, prefix, files)
    source = S3PrefixSource(s3, BUCKET, prefix)
    report = validate(source)

    applied = apply_fixes(source, report, backup_prefix="runs/ft/r1/original/")
    assert apply_fixes(source, report, backup_prefix="runs/ft/r1/original/") == []  # a retried stage

    assert {fix.path for fix in applied} == {CONFIG, GENERATION, INDEX}
    for fix in applied:
        backup = s3.get_object(Bucket=BUCKET, Key=f"runs/ft/r1/original/{fix.path}")
        assert backup["Body"].read() == files[fix.path]
        current = s3.get_object(Bucket=BUCKET, Key=prefix + fix.path)
        body = current["Body"].read()
        assert current["Metadata"] == {"sha256": sha256(files[fix.path]), "fixed-sha256": sha256(body)}
        assert fix.backup == f"s3://{BUCKET}/runs/ft/r1/original/{fix.path}"
    config = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + CONFIG)["Body"].read())
    generation = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + GENERATION)["Body"].read())
    assert "quantization_config" not in config
    assert generation["eos_token_id"] == [200002, 199999, 200012]
    assert validate(source).verdict == "ok"


def test_a_quantization_the_tensors_confirm_is_refused_unless_allowed(tmp_path: Path):
    folder = write_repo(repos.gpt_oss_mxfp4(), tmp_path)
    refused = validate(LocalFolderSource(folder))
    assert refused.verdict == "failed"
    assert "QUANTIZATION_UNSUPPORTED" in {f.code for f in refused.by_severity(Severity.ERROR)}
    assert "QUANTIZATION_CONFIG_STALE" not in {f.code for f in refused.findings}

    allowed = validate(LocalFolderSource(folder), ValidationOptions(allow_quantized=True))
    assert allowed.verdict == "fixable"  # only the index metadata is left
    assert set(fixable(allowed).values()) == {"INDEX_METADATA_FIELD_UNSUPPORTED"}
    # The config of a confirmed quantization is never touched.
    apply_fixes(LocalFolderSource(folder), allowed)
    assert (folder / CONFIG).read_bytes() == repos.gpt_oss_mxfp4()[CONFIG]
