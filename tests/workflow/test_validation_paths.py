"""Validation, second edition, through the whole workflow: the allow-list copies only what Bedrock loads (the Hub's
request log proves the rest was never read), the repairs AWS documents make a stale GPT-OSS fine-tune import, and a
stack in a Region without Custom Model Import refuses before copying."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from urllib.parse import unquote

import boto3
import pytest

from modelferry_cli.local.bedrock import EmulatorBehaviour, inspect_artifacts
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.rig import BUCKET, REGION, LocalRig
from tests.support import validation_repos as repos

pytestmark = pytest.mark.workflow


def _objects(prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    return {key.removeprefix(prefix): s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def _paths_resolved(hub: LocalHub, repo_id: str) -> set[str]:
    """Every repository path a resolve request named (the copy and the header reads go through resolve)."""
    marker = f"/{repo_id}/resolve/"
    return {
        unquote(r.path.split(marker, 1)[1].split("/", 1)[1])
        for r in hub.requests
        if r.endpoint == "resolve" and marker in r.path
    }


def _cdn_bytes_by_blob(hub: LocalHub) -> dict[str, int]:
    served: dict[str, int] = {}
    for r in hub.requests:
        if r.endpoint == "cdn":
            blob = r.path.rsplit("/", 1)[1]
            served[blob] = served.get(blob, 0) + r.body_bytes
    return served


def test_trainer_output_imports_with_only_the_loadable_files_copied(hub: LocalHub, rig: LocalRig) -> None:
    repo_id = "acme/qwen-support-ft"
    files = repos.trainer_output()
    loadable = repos.loadable(files)
    commit = hub.add_repo(repo_id, files)

    report = rig.run({"repo_id": repo_id, "model_name": "qwen-support-ft"})

    assert report.status == "SUCCEEDED", report.cause
    copied = _objects(f"models/qwen-support-ft/{commit}/")
    assert set(copied) == loadable
    # The manifest lists everything else with its reason; none of it counts toward the copied bytes.
    state = report.state
    assert state is not None
    assert state.plan is not None
    s3 = boto3.client("s3", region_name=REGION)
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=state.plan.manifest.manifest_key)["Body"].read())
    excluded = {entry["path"]: entry["reason"] for entry in manifest["excluded"]}
    assert set(excluded) == set(files) - loadable
    assert "trainer checkpoint" in excluded["checkpoint-500/optimizer.pt"]
    assert "training state" in excluded["optimizer.pt"]
    assert "LoRA adapter" in excluded["adapter_model.safetensors"]
    assert "ONNX" in excluded["onnx/model.onnx"]
    assert state.plan.manifest.total_bytes == sum(len(files[path]) for path in loadable)

    # What the local Hub served: no request ever named a left-out file, and no left-out content crossed the wire.
    assert _paths_resolved(hub, repo_id) == loadable  # each loadable file was read, and nothing else
    assert not _paths_resolved(hub, repo_id) & set(excluded)
    loadable_blobs = {hashlib.sha256(files[path]).hexdigest() for path in loadable}
    left_out_blobs = {hashlib.sha256(files[path]).hexdigest() for path in excluded} - loadable_blobs
    served = _cdn_bytes_by_blob(hub)
    assert served  # the shards came through the CDN redirect
    assert not set(served) & left_out_blobs
    left_out_bytes = sum(len(files[path]) for path in excluded)
    assert left_out_bytes > 500_000  # the checkpoint, optimizer state and ONNX export would have shown
    assert sum(r.body_bytes for r in hub.requests) < sum(len(files[path]) for path in loadable) + 64 * 1024


def test_a_stale_quantization_gpt_oss_fine_tune_imports_after_the_repairs(hub: LocalHub, rig: LocalRig) -> None:
    repo_id = "acme/gpt-oss-support-ft"
    files = repos.gpt_oss_dequantized_finetune()
    commit = hub.add_repo(repo_id, files)

    report = rig.run({"repo_id": repo_id, "model_name": "gpt-oss-support-ft"})

    assert report.status == "SUCCEEDED", report.cause
    state = report.state
    assert state is not None
    assert state.plan is not None
    assert state.plan.validation.verdict == "fixable"  # the Hub check let it through, uncopied findings fixable
    assert state.validation is not None
    assert {(fix.path, fix.rule_code) for fix in state.validation.fixes} == {
        ("config.json", "QUANTIZATION_CONFIG_STALE"),
        ("generation_config.json", "GENERATION_CONFIG_EOS"),
        ("model.safetensors.index.json", "INDEX_METADATA_FIELD_UNSUPPORTED"),
    }
    model_prefix = f"models/gpt-oss-support-ft/{commit}/"
    copied = _objects(model_prefix)
    assert "quantization_config" not in json.loads(copied["config.json"])
    assert json.loads(copied["generation_config.json"])["eos_token_id"] == [200002, 199999, 200012]
    originals = _objects(f"{state.plan.run.run_prefix}original/")
    assert originals == {path: files[path] for path in originals}
    assert set(originals) == {"config.json", "generation_config.json", "model.safetensors.index.json"}
    assert state.verify is not None  # the imported model answered: the end-of-sequence ids were repaired

    # The emulator's own judge refuses the copy as the Hub published it: the repair is what made it import.
    s3 = boto3.client("s3", region_name=REGION)
    for path, data in (copied | {"config.json": files["config.json"]}).items():
        s3.put_object(Bucket=BUCKET, Key=f"control/{path}", Body=data)
    refused = inspect_artifacts(s3, f"s3://{BUCKET}/control/")
    assert refused.failure_message is not None
    assert "mxfp4 quantization" in refused.failure_message


@pytest.fixture
def regional_rig(request: pytest.FixtureRequest, hub: LocalHub, behaviour: EmulatorBehaviour) -> Iterator[LocalRig]:
    """The stack deployed in another Region: its Lambdas see that AWS_REGION, as Lambda sets it."""
    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour, settings={"AWS_REGION": request.param}) as local_rig:
        yield local_rig


@pytest.mark.parametrize(
    ("regional_rig", "build", "code"),
    [
        ("eu-west-1", repos.llama31_instruct, "REGION_UNSUPPORTED"),  # no Custom Model Import there
        ("us-east-2", repos.gpt_oss_bf16_finetune, "ARCHITECTURE_REGION_UNSUPPORTED"),  # GPT-OSS: us-east-1 only
    ],
    indirect=["regional_rig"],
    ids=["eu-west-1", "gpt-oss-in-us-east-2"],
)
def test_a_stack_in_a_region_that_cannot_import_refuses_before_copying(
    hub: LocalHub, regional_rig: LocalRig, build, code: str
) -> None:
    repo_id = "acme/support-ft"
    files = build()
    hub.add_repo(repo_id, files)

    report = regional_rig.run({"repo_id": repo_id, "model_name": "support-ft"})

    assert report.status == "FAILED"
    assert report.error == "ModelNotImportable"
    assert f"{code} (repository)" in report.cause
    assert [s.name for s in report.states if s.name in {"CopyFiles", "ValidateInS3", "StartImport"}] == []
    assert _objects("models/") == {}
    assert len(report.notifications) == 1
    assert "FAILED at Plan" in report.notifications[0]["subject"]
    # Plan read small files and headers only: no weights crossed the wire, and Bedrock was never asked.
    weights = sum(len(data) for path, data in files.items() if path.endswith(".safetensors"))
    assert sum(r.body_bytes for r in hub.requests if r.endpoint == "cdn") < weights / 4
    assert regional_rig.bedrock is not None
    assert [call.operation for call in regional_rig.bedrock.calls] == []


def test_a_lora_adapter_repository_is_refused_before_copying_with_what_to_do(hub: LocalHub, rig: LocalRig) -> None:
    hub.add_repo("acme/support-lora", repos.peft_lora_adapter())

    report = rig.run({"repo_id": "acme/support-lora", "model_name": "support-lora"})

    assert report.status == "FAILED"
    assert report.error == "ModelNotImportable"
    assert "LORA_ADAPTER_UNSUPPORTED (adapter_config.json)" in report.cause
    assert "merge it into meta-llama/Llama-3.1-8B-Instruct" in report.cause
    assert "CONFIG_MISSING" not in report.cause
    assert _objects("models/") == {}
    assert "merge it into meta-llama/Llama-3.1-8B-Instruct" in report.notifications[0]["message"]
