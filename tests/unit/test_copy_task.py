"""The Fargate copy task's entrypoint, run as the container runs it
(`python -m modelferry.handlers.copy_file_on_fargate`), in a subprocess against moto's S3 server and the local Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from modelferry.adapters.hub import HubClient
from modelferry.contract import CopyItem, ManifestEntry, RunContext
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import safetensors_bytes

REPO = "org/task-model"
EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:modelferry:run-1"
BUCKET = "model-bucket"
WEIGHTS = safetensors_bytes({"weight": ("U8", (2_000_000,))}, seed=3)
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Iterator[Any]:
    client = boto3.client("s3", endpoint_url=s3_endpoint, **{k.lower(): v for k, v in AWS_ENV.items() if "KEY" in k})
    client.create_bucket(Bucket=BUCKET)
    yield client
    for found in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=found["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as local_hub:
        yield local_hub


@pytest.fixture
def item(hub: LocalHub) -> CopyItem:
    commit = hub.add_repo(REPO, {"model.safetensors": WEIGHTS})
    (published,) = HubClient(hub.url).list_files(REPO, commit)
    entry = ManifestEntry(
        path=published.path,
        size=published.size,
        sha256=published.sha256,
        blob_id=published.blob_id,
        key="models/model.safetensors",
        runner="fargate",
    )
    return CopyItem(
        execution_id=EXECUTION_ARN,
        file=entry,
        run=RunContext(repo_id=REPO, commit=commit, bucket=BUCKET, run_id="run-1", run_prefix="runs/m/run-1/"),
    )


def run_task(copy_item: str, *, hub: LocalHub, s3_endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(FUNCTIONS),  # as in the container image: only the domain package
        **AWS_ENV,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "HF_ENDPOINT": hub.url,
        "MODEL_BUCKET": BUCKET,
        "COPY_ITEM": copy_item,
    }
    return subprocess.run(
        [sys.executable, "-m", "modelferry.handlers.copy_file_on_fargate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_task_copies_its_item_and_prints_the_result(hub, s3_endpoint, s3, item) -> None:
    # the state machine passes the whole Map item, network settings included
    network = {"subnets": ["subnet-1"], "security_groups": ["sg-1"], "assign_public_ip": "ENABLED"}
    map_item = {**item.model_dump(mode="json"), "fargate": network}

    done = run_task(json.dumps(map_item), hub=hub, s3_endpoint=s3_endpoint)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sha256"] == item.file.sha256
    assert (result["key"], result["bytes_copied"], result["skipped"]) == (item.file.key, len(WEIGHTS), False)
    assert s3.get_object(Bucket=BUCKET, Key=item.file.key)["Body"].read() == WEIGHTS
    progress = [json.loads(line) for line in done.stderr.splitlines() if "copy progress" in line]
    assert progress[-1]["percent"] == 100
    assert progress[-1]["run_id"] == "run-1"
    assert progress[-1]["correlation_id"] == EXECUTION_ARN  # joins the Lambdas' logs of the same execution


def test_a_failed_copy_exits_non_zero_naming_the_error_on_stderr(hub, s3_endpoint, s3, item) -> None:
    hub.faults.add("corrupt", on=("cdn",), times=None)

    done = run_task(item.model_dump_json(), hub=hub, s3_endpoint=s3_endpoint)

    assert done.returncode == 1
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert error["errorType"] == "ChecksumMismatch"
    assert item.file.sha256 in error["errorMessage"]
    assert done.stdout == ""
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=item.file.key)["KeyCount"] == 0


@pytest.mark.parametrize("case", ["malformed", "other bucket"])
def test_an_item_the_task_cannot_take_is_refused_by_name(hub, s3_endpoint, s3, item, case) -> None:
    if case == "malformed":
        copy_item, message = "{not json", "not a CopyItem"
    else:
        other = item.model_copy(update={"run": item.run.model_copy(update={"bucket": "other-bucket"})})
        copy_item, message = other.model_dump_json(), "bucket 'other-bucket'"

    done = run_task(copy_item, hub=hub, s3_endpoint=s3_endpoint)

    assert done.returncode == 1
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert error["errorType"] == "InvalidRequest"
    assert message in error["errorMessage"]
