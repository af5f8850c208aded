"""Fixes: the index metadata is cleaned in place, the original backed up once, and a second run changes nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from modelferry.adapters.hub import HubClient
from modelferry.validation import HubRepoSource, LocalFolderSource, S3PrefixSource, apply_fixes, validate
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import write_repo
from tests.support import validation_repos as repos
from tests.support.validation_repos import INDEX, edit_json

BUCKET = "models"
PREFIX = "models/gpt-oss/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def s3_model(s3):
    """The bf16 fine-tune as the copy stage leaves it: with the Hub's sha256 in the object metadata."""
    files = repos.gpt_oss_bf16_finetune()
    for path, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=PREFIX + path, Body=data, Metadata={"sha256": sha256(data)})
    return files


def index_of(data: bytes) -> dict:
    return json.loads(data)


def test_local_fix_keeps_only_total_size_and_an_orig_copy(tmp_path: Path):
    files = repos.gpt_oss_bf16_finetune()
    source = LocalFolderSource(write_repo(files, tmp_path))
    report = validate(source)
    assert report.verdict == "fixable"

    applied = apply_fixes(source, report)

    fixed = (tmp_path / INDEX).read_bytes()
    original = index_of(files[INDEX])
    assert index_of(fixed)["metadata"] == {"total_size": original["metadata"]["total_size"]}
    assert index_of(fixed)["weight_map"] == original["weight_map"]
    assert (tmp_path / f"{INDEX}.orig").read_bytes() == files[INDEX]
    assert [(a.path, a.rule_code) for a in applied] == [(INDEX, "INDEX_METADATA_FIELD_UNSUPPORTED")]
    assert applied[0].original_sha256 == sha256(files[INDEX])
    assert applied[0].fixed_sha256 == sha256(fixed)
    assert applied[0].backup == str(tmp_path / f"{INDEX}.orig")
    assert validate(source).verdict == "ok"


def test_local_fix_is_idempotent(tmp_path: Path):
    source = LocalFolderSource(write_repo(repos.gpt_oss_bf16_finetune(), tmp_path))
    report = validate(source)
    apply_fixes(source, report)
    after_first = (tmp_path / INDEX).read_bytes(), (tmp_path / f"{INDEX}.orig").read_bytes()

    assert apply_fixes(source, report) == []  # the same (stale) report again: nothing left to change
    assert ((tmp_path / INDEX).read_bytes(), (tmp_path / f"{INDEX}.orig").read_bytes()) == after_first


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [(None, {}), ({"total_size": "12"}, {}), ({"total_size": 12, "format": "pt"}, {"total_size": 12})],
    ids=["missing", "string-total-size", "extra-field"],
)
def test_fixed_metadata(tmp_path: Path, metadata, expected):
    files = edit_json(repos.gpt_oss_bf16_finetune(), INDEX, metadata=metadata)
    source = LocalFolderSource(write_repo(files, tmp_path))
    apply_fixes(source, validate(source))
    assert index_of((tmp_path / INDEX).read_bytes())["metadata"] == expected
    assert validate(source).verdict == "ok"


def test_s3_fix_backs_up_under_the_given_prefix_and_records_both_hashes(s3, s3_model):
    source = S3PrefixSource(s3, BUCKET, PREFIX)
    applied = apply_fixes(source, validate(source), backup_prefix="runs/r1/original/")

    backup = s3.get_object(Bucket=BUCKET, Key=f"runs/r1/original/{INDEX}")
    assert backup["Body"].read() == s3_model[INDEX]
    assert backup["Metadata"] == {"sha256": sha256(s3_model[INDEX])}
    fixed = s3.get_object(Bucket=BUCKET, Key=PREFIX + INDEX)
    fixed_bytes = fixed["Body"].read()
    assert index_of(fixed_bytes)["metadata"] == {"total_size": index_of(s3_model[INDEX])["metadata"]["total_size"]}
    # The copy stage's provenance stays; what the object holds now is added.
    assert fixed["Metadata"] == {"sha256": sha256(s3_model[INDEX]), "fixed-sha256": sha256(fixed_bytes)}
    assert applied[0].backup == f"s3://{BUCKET}/runs/r1/original/{INDEX}"
    assert (applied[0].original_sha256, applied[0].fixed_sha256) == (sha256(s3_model[INDEX]), sha256(fixed_bytes))
    assert validate(source).verdict == "ok"  # the same source object: its listing was refreshed


def test_s3_retry_never_overwrites_the_backup(s3, s3_model):
    """A first attempt backed up the original and died before writing the fix: the retry keeps that backup."""
    backup_key = f"runs/r1/original/{INDEX}"
    s3.put_object(Bucket=BUCKET, Key=backup_key, Body=s3_model[INDEX], Metadata={"attempt": "1"})
    source = S3PrefixSource(s3, BUCKET, PREFIX)
    report = validate(source)

    apply_fixes(source, report, backup_prefix="runs/r1/original/")
    assert apply_fixes(source, report, backup_prefix="runs/r1/original/") == []

    backup = s3.get_object(Bucket=BUCKET, Key=backup_key)
    assert backup["Metadata"] == {"attempt": "1"}
    assert backup["Body"].read() == s3_model[INDEX]
    assert validate(source).verdict == "ok"


def test_s3_default_backup_is_a_sibling_of_the_model_prefix(s3, s3_model):
    source = S3PrefixSource(s3, BUCKET, PREFIX)
    applied = apply_fixes(source, validate(source))
    assert applied[0].backup == f"s3://{BUCKET}/models/gpt-oss.orig/{INDEX}"
    assert INDEX in {f.path for f in source.list_files()}
    assert not [f for f in source.list_files() if f.path.endswith(".orig") or ".orig/" in f.path]


def test_nothing_to_fix_writes_nothing(tmp_path: Path):
    folder = write_repo(repos.qwen3_moe(), tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    source = LocalFolderSource(folder)
    assert apply_fixes(source, validate(source)) == []
    assert sorted(p.name for p in folder.iterdir()) == before


def test_the_hub_is_read_only():
    with LocalHub() as hub:
        commit = hub.add_repo("org/model", repos.gpt_oss_bf16_finetune())
        source = HubRepoSource(HubClient(hub.url), "org/model", commit)
        with pytest.raises(TypeError, match="read-only"):
            apply_fixes(source, validate(source))
