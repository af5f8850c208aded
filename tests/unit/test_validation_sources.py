"""One engine, three sources: the same repository gives the same findings (and reads the same bytes) from a local
folder, the Hub (LocalHub) and an S3 prefix (moto)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from modelferry.adapters.hub import HubClient
from modelferry.errors import ChecksumMismatch
from modelferry.validation import HubRepoSource, LocalFolderSource, S3PrefixSource, ValidationOptions, validate
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import write_repo
from tests.support import validation_repos as repos
from tests.support.validation_repos import Files

BUCKET = "models"

SHAPES: list[Callable[[], Files]] = [
    repos.llama31_instruct,
    repos.qwen25_instruct,
    repos.qwen3_moe,
    repos.mistral_instruct,
    repos.gpt_oss_mxfp4,
    repos.gpt_oss_bf16_finetune,
    repos.pytorch_bin_only,
    repos.bert,
    repos.phi3,
    repos.missing_shard,
    repos.corrupt_shard,
    repos.with_adapter,
    repos.trainer_output,
    repos.peft_lora_adapter,
    repos.peft_lora_adapter_with_base_config,
    repos.reward_model,
    repos.qwen3_embedding,
    repos.e5_mistral,
    repos.llama_awq,
    repos.qwen3_fp8_base_finetune,
    repos.gpt_oss_dequantized_finetune,
    repos.gpt_oss_two_eos_ids,
    repos.llama31_base,
    repos.qwen3_saved_by_newer_transformers,
]


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with LocalHub() as local_hub:
        yield local_hub


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def upload(s3, prefix: str, files: Files) -> None:
    for path, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}{path}", Body=data)


@pytest.mark.parametrize("build", SHAPES, ids=[shape.__name__ for shape in SHAPES])
def test_same_findings_from_a_folder_the_hub_and_s3(tmp_path: Path, hub: LocalHub, s3, build):
    files = build()
    repo_id = f"org/{build.__name__}"
    commit = hub.add_repo(repo_id, files)
    upload(s3, f"models/{build.__name__}/", files)
    options = ValidationOptions(allow_quantized=False)

    reports = [
        validate(LocalFolderSource(write_repo(files, tmp_path)), options),
        validate(HubRepoSource(HubClient(hub.url), repo_id, commit), options),
        validate(S3PrefixSource(s3, BUCKET, f"models/{build.__name__}"), options),
    ]

    local, *others = reports
    for other in others:
        assert other.verdict == local.verdict
        assert other.findings == local.findings
        assert other.bytes_read == local.bytes_read
        assert other.total_weight_bytes == local.total_weight_bytes
        assert other.excluded == local.excluded


def test_hub_source_uses_the_planned_file_list_when_given(hub: LocalHub, monkeypatch: pytest.MonkeyPatch):
    commit = hub.add_repo("org/listed", repos.qwen3_moe())
    client = HubClient(hub.url)
    files = client.list_files("org/listed", commit)
    monkeypatch.setattr(client, "list_files", lambda *_: pytest.fail("Plan's listing was not reused"))
    report = validate(HubRepoSource(client, "org/listed", commit, files=files))
    assert report.verdict == "ok"
    assert all(r.range for r in hub.requests if r.endpoint == "cdn")  # weights only ever read by range


def test_s3_prefix_is_a_folder_not_a_string_prefix(s3):
    upload(s3, "models/x/", repos.qwen3_moe())
    upload(s3, "models/x-old/", {"stray.safetensors": b"junk"})
    s3.put_object(Bucket=BUCKET, Key="models/x/", Body=b"")  # a console's folder marker

    for prefix in ("models/x", "models/x/", "/models/x/"):
        source = S3PrefixSource(s3, BUCKET, prefix)
        assert source.location == f"s3://{BUCKET}/models/x/"
        assert validate(source).verdict == "ok"
        assert "stray.safetensors" not in {f.path for f in source.list_files()}


def test_local_folder_skips_git_and_download_cache(tmp_path: Path):
    folder = write_repo(repos.qwen3_moe(), tmp_path)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".cache" / "huggingface").mkdir(parents=True)
    (folder / ".cache" / "huggingface" / "model.safetensors.lock").write_text("")
    report = validate(LocalFolderSource(folder))
    assert report.verdict == "ok"
    assert not [f for f in report.findings if f.path and f.path.startswith((".git/", ".cache/"))]


def test_unreadable_targets_raise_the_transport_error(tmp_path: Path, s3):
    with pytest.raises(NotADirectoryError):
        validate(LocalFolderSource(tmp_path / "nowhere"))
    with pytest.raises(s3.exceptions.NoSuchBucket):
        validate(S3PrefixSource(s3, "no-such-bucket", "models/x"))


@pytest.mark.parametrize("listed", [True, False], ids=["planned-listing", "own-listing"])
def test_a_hub_file_read_with_a_flipped_byte_is_read_again(hub: LocalHub, listed: bool):
    commit = hub.add_repo("org/flipped-config", repos.qwen3_moe())
    client = HubClient(hub.url)
    source = HubRepoSource(
        client, "org/flipped-config", commit, files=client.list_files("org/flipped-config", commit) if listed else None
    )
    source.list_files()
    # config.json is a plain git file (checked by its blob sha1); its first byte flipped is not JSON any more
    flipped = hub.faults.add("corrupt", path_glob="config.json", on=("resolve",), offset=0)

    report = validate(source)

    assert flipped.hits == 1
    assert report.verdict == "ok"
    assert source.read_file("config.json") == repos.qwen3_moe()["config.json"]


def test_a_hub_file_wrong_in_every_read_fails_naming_it(hub: LocalHub):
    commit = hub.add_repo("org/always-flipped", repos.qwen3_moe())
    source = HubRepoSource(HubClient(hub.url), "org/always-flipped", commit)
    source.list_files()
    flipped = hub.faults.add("corrupt", path_glob="config.json", on=("resolve",), offset=3, times=None)

    with pytest.raises(ChecksumMismatch, match=r"config\.json .* in 3 reads"):
        source.read_file("config.json")
    assert flipped.hits == 3
