"""After the import: `modelferry chat`, `models` and `delete`, driven against the Bedrock emulator (real HTTP) with
S3 from moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from modelferry_cli.local.bedrock import BedrockEmulator
from modelferry_cli.main import main

REGION = "us-east-1"
BUCKET = "modelferry-models"
WEIGHTS = "models/tiny/abc123/"
S3_URI = f"s3://{BUCKET}/{WEIGHTS}"
OURS = {"modelferry:source": "org/tiny@abc123", "modelferry:s3-uri": S3_URI}


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockEmulator]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(), BedrockEmulator(lambda: boto3.client("s3", region_name=REGION)) as bedrock:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", str(bedrock.url))
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", str(bedrock.url))
        yield bedrock


@pytest.fixture
def s3(emulator: BedrockEmulator) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    for key in (f"{WEIGHTS}config.json", f"{WEIGHTS}model.safetensors", "modelferry-runs/tiny/run-1/manifest.json"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    for key in ("models/other/def456/config.json", "modelferry-runs/other/run-2/manifest.json", "notes.txt"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    return client


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def keys(s3: Any) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


# --- chat ---------------------------------------------------------------------------------------------------------


def test_chat_waits_out_a_cold_model_then_shows_reasoning_answer_and_counts(
    emulator: BedrockEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.behaviour.not_ready_invocations = 2
    emulator.add_imported_model("tiny", S3_URI, tags=OURS)

    status, out, err = run(capsys, "chat", "tiny", "What is CMI?", "--interval", "0", "--system", "Be brief.")

    assert status == 0, err
    assert err.count("warming up") == 2
    assert "Traceback" not in err
    assert "Reasoning: The user asks: What is CMI?" in out
    assert "Answer:    Hello! You asked: What is CMI?" in out
    assert "Finish:    stop; tokens" in out
    assert "Warm-up:   2 ModelNotReadyException" in out


def test_chat_json_reports_a_reasoning_model_cut_off_by_its_budget(
    emulator: BedrockEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = emulator.add_imported_model("tiny", S3_URI, tags=OURS, warm=True)

    status, out, _ = run(capsys, "chat", arn, "Ping?", "--max-tokens", "3", "--json")

    assert status == 0
    exchange = json.loads(out)
    assert (exchange["content"], exchange["reasoning"], exchange["finish_reason"]) == ("", "The user asks:", "length")
    assert exchange["usage"]["total_tokens"] == exchange["usage"]["prompt_tokens"] + 3
    assert exchange["model_arn"] == arn


def test_chat_gives_up_on_a_model_that_stays_cold_with_one_line(
    emulator: BedrockEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.behaviour.not_ready_invocations = 5
    emulator.add_imported_model("tiny", S3_URI, tags=OURS)

    status, _, err = run(capsys, "chat", "tiny", "hi", "--interval", "0", "--warm-up-attempts", "2")

    assert status == 1
    assert "still warming up after 2 attempts" in err
    assert "Traceback" not in err


def test_chat_with_an_unknown_model_is_one_line(emulator: BedrockEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "chat", "nope", "hi")
    assert status == 2
    assert err.startswith("modelferry: ResourceNotFoundException from GetImportedModel")


# --- models -------------------------------------------------------------------------------------------------------


def test_models_lists_source_commit_s3_units_and_price(
    emulator: BedrockEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.add_imported_model("tiny", S3_URI, tags=OURS, custom_model_units=2)
    emulator.add_imported_model("theirs", "s3://elsewhere/model/", architecture="llama")

    status, out, _ = run(capsys, "models", "--json", "--price-per-cmu-minute", "0.1")

    assert status == 0
    by_name = {model["name"]: model for model in json.loads(out)}
    tiny = by_name["tiny"]
    assert (tiny["repo_id"], tiny["commit"], tiny["s3_uri"]) == ("org/tiny", "abc123", S3_URI)
    assert (tiny["architecture"], tiny["custom_model_units"]) == ("gpt_oss", 2)
    assert tiny["estimated_usd_per_5_minute_window"] == 1.0
    assert tiny["created"]
    assert by_name["theirs"]["imported_by_modelferry"] is False
    assert by_name["theirs"]["s3_uri"] == "s3://elsewhere/model/"

    status, text, _ = run(capsys, "models")
    assert "source:  org/tiny@abc123" in text
    assert "source:  (not modelferry)" in text


# --- delete -------------------------------------------------------------------------------------------------------


def test_delete_refuses_a_model_modelferry_did_not_import(
    emulator: BedrockEmulator, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.add_imported_model("theirs", S3_URI, tags={"owner": "someone"})

    status, _, err = run(capsys, "delete", "theirs", "--yes", "--s3")

    assert status == 1
    assert "modelferry did not import it" in err
    assert [model.name for model in emulator.models] == ["theirs"]
    assert f"{WEIGHTS}config.json" in keys(s3)

    assert run(capsys, "delete", "theirs", "--yes", "--force")[0] == 0
    assert emulator.models == []


def test_delete_with_s3_removes_the_weights_and_run_records_and_nothing_else(
    emulator: BedrockEmulator, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.add_imported_model("tiny", S3_URI, tags=OURS)
    before = keys(s3)

    status, out, _ = run(capsys, "delete", "tiny", "--s3", "--yes")

    assert status == 0
    assert f"Will delete 2 objects under {S3_URI}" in out
    assert "Will delete 1 objects under s3://modelferry-models/modelferry-runs/tiny/" in out
    assert emulator.models == []
    assert keys(s3) == {key for key in before if not key.startswith((WEIGHTS, "modelferry-runs/tiny/"))}
    assert keys(s3) == {"models/other/def456/config.json", "modelferry-runs/other/run-2/manifest.json", "notes.txt"}


def test_delete_without_s3_or_confirmation_keeps_everything_it_must(
    emulator: BedrockEmulator, s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.add_imported_model("tiny", S3_URI, tags=OURS)
    before = keys(s3)
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)

    assert run(capsys, "delete", "tiny")[0] == 1
    assert len(emulator.models) == 1

    assert run(capsys, "delete", "tiny", "--yes")[0] == 0
    assert emulator.models == []
    assert keys(s3) == before
