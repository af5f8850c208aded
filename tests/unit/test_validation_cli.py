"""`modelferry validate`: exit status, the one JSON object, human output grouped by severity, --fix, unreadable
targets."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from modelferry_cli import validate_cmd
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import write_repo
from modelferry_cli.main import main
from tests.support import validation_repos as repos
from tests.support.validation_repos import INDEX


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    validate_cmd.add_arguments(parser)
    return validate_cmd.run(parser.parse_args(argv))


@pytest.fixture(autouse=True)
def no_configured_region(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Region rules follow the configured Region: none here, whatever the machine running the tests has."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path_factory.mktemp("aws") / "config"))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="models")
        yield client


def test_ok_model_exits_0_with_a_verdict_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli(str(write_repo(repos.qwen25_instruct(), tmp_path))) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK:")
    assert "qwen2 (Qwen2ForCausalLM)" in out
    assert "PATH_EXCLUDED  LICENSE" in out


def test_failed_model_exits_1_and_groups_findings_with_hints(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli(str(write_repo(repos.gpt_oss_mxfp4(), tmp_path))) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED:")
    sections = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert sections[1:] == ["errors (3)", "fixable (1)", "not copied / info (5)"]
    assert "  QUANTIZATION_UNSUPPORTED  config.json\n" in out
    assert "fix: Use the bf16/fp16 checkpoint" in out


def test_json_is_exactly_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli(str(write_repo(repos.phi3(), tmp_path)), "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "failed"
    assert {"code": "ARCHITECTURE_UNSUPPORTED", "severity": "error", "path": "config.json"}.items() <= next(
        f for f in document["findings"] if f["code"] == "ARCHITECTURE_UNSUPPORTED"
    ).items()
    assert document["bytes_read"] > 0
    assert "fixes" not in document


def test_allow_quantized_turns_the_mxfp4_errors_into_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli(str(write_repo(repos.gpt_oss_mxfp4(), tmp_path)), "--json", "--allow-quantized") == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "fixable"


def test_fix_on_a_folder_repairs_and_reports_the_new_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    folder = write_repo(repos.gpt_oss_bf16_finetune(), tmp_path)
    assert cli(str(folder), "--json", "--fix") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "ok"
    assert [fix["path"] for fix in document["fixes"]] == [INDEX]
    assert (folder / f"{INDEX}.orig").exists()

    assert cli(str(folder), "--fix") == 0  # nothing left to fix
    out = capsys.readouterr().out
    assert out.startswith("OK:")
    assert "fixed" not in out


def test_fix_on_s3(s3, capsys: pytest.CaptureFixture[str]):
    for path, data in repos.gpt_oss_bf16_finetune().items():
        s3.put_object(Bucket="models", Key=f"gpt/{path}", Body=data)
    assert cli("s3://models/gpt", "--fix") == 0
    out = capsys.readouterr().out
    assert out.startswith("OK:")
    assert f"original kept at s3://models/gpt.orig/{INDEX}" in out


def test_hub_target_with_revision(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    with LocalHub() as hub:
        commit = hub.add_repo("org/model", repos.qwen3_moe())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        assert cli(f"hf://org/model@{commit}", "--json") == 0
        assert json.loads(capsys.readouterr().out)["target"] == f"hf://org/model@{commit}"
        assert cli("hf://org/model", "--revision", "main", "--json") == 0
        capsys.readouterr()
        assert cli("hf://org/missing") == 2
        assert "org/missing" in capsys.readouterr().err
        assert cli("hf://org/model", "--fix") == 2
        assert "read-only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("{tmp}/nowhere", "no such folder"),
        ("{tmp}", "holds no files"),
        ("org/name", "hf://org/name"),
        ("hf://", "hf://ORG/NAME"),
        ("hf://a/b/c", "hf://ORG/NAME"),
        ("s3://", "s3://BUCKET/PREFIX"),
    ],
)
def test_unreadable_targets_exit_2_and_say_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, reason: str
):
    assert cli(target.format(tmp=tmp_path)) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err
    assert reason in err


def test_missing_bucket_and_empty_prefix_exit_2(s3, capsys: pytest.CaptureFixture[str]):
    assert cli("s3://no-such-bucket/x") == 2
    assert "NoSuchBucket" in capsys.readouterr().err
    assert cli("s3://models/empty/") == 2
    assert "holds no files" in capsys.readouterr().err


def test_revision_twice_must_agree(capsys: pytest.CaptureFixture[str]):
    assert cli("hf://org/model@v1", "--revision", "v2") == 2
    assert "contradicts" in capsys.readouterr().err


def test_wired_into_the_modelferry_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["validate", str(write_repo(repos.phi3(), tmp_path)), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "failed"


def test_region_flag_refuses_a_region_without_custom_model_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli(str(write_repo(repos.llama31_instruct(), tmp_path)), "--region", "eu-west-1") == 1
    out = capsys.readouterr().out
    assert "  REGION_UNSUPPORTED\n      Custom Model Import does not run in eu-west-1" in out
    assert "  Region: eu-west-1" in out


def test_region_defaults_to_the_configured_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    folder = str(write_repo(repos.gpt_oss_bf16_finetune(), tmp_path))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert cli(folder, "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["region"] == "us-west-2"
    assert "ARCHITECTURE_REGION_UNSUPPORTED" in {f["code"] for f in document["findings"]}
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # the AWS CLI's own variable wins, as it does there
    assert cli(folder, "--json") == 1
    assert json.loads(capsys.readouterr().out)["region"] == "eu-central-1"
    # An explicit --region wins over the configured one.
    assert cli(folder, "--json", "--region", "us-east-1") == 0
    assert json.loads(capsys.readouterr().out)["region"] == "us-east-1"


def test_without_a_region_the_region_rules_do_not_run_and_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli(str(write_repo(repos.gpt_oss_bf16_finetune(), tmp_path))) == 0
    out = capsys.readouterr().out
    assert "Region: not checked" in out
    assert "REGION_UNSUPPORTED" not in out


def test_fix_repairs_a_dequantised_gpt_oss_fine_tune(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    folder = write_repo(repos.gpt_oss_dequantized_finetune(), tmp_path)
    assert cli(str(folder), "--fix", "--region", "us-east-1") == 0
    out = capsys.readouterr().out
    assert out.startswith("OK:")
    for path, code in (
        ("config.json", "QUANTIZATION_CONFIG_STALE"),
        ("generation_config.json", "GENERATION_CONFIG_EOS"),
    ):
        assert f"fixed {path} ({code}); original kept at {folder / path}.orig" in out
