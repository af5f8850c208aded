"""The Bedrock emulator, driven only through real boto3 clients, with S3 from moto.

Under ``mock_aws`` moto intercepts botocore requests whose URL matches an AWS endpoint pattern (``*.amazonaws.com``);
``http://127.0.0.1:PORT`` matches none, so bedrock calls pass through to the emulator while the emulator's own S3 calls
(made on its server threads, in this process) are served by moto. ``test_requests_under_mock_aws_reach_the_emulator``
checks that.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer
from safetensors.numpy import save

from modelferry_cli.local.bedrock import (
    SUPPORTED_ARCHITECTURES,
    BedrockEmulator,
    custom_model_units_for,
)

REGION = "us-east-1"
BUCKET = "modelferry-staging"
PREFIX = "models/tiny-gpt-oss/"
S3_URI = f"s3://{BUCKET}/{PREFIX}"
ROLE_ARN = "arn:aws:iam::123456789012:role/modelferry-import"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
# One session for every client: its loaded service models are reused, which keeps client creation cheap.
SESSION = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
CLI_DIR = Path(__file__).resolve().parents[2] / "cli"


def tiny_model_files() -> dict[str, bytes]:
    """A GPT-OSS-shaped repository, already fixed for Bedrock (index metadata holds only total_size)."""
    shards = {name: save({f"layer{i}.weight": np.zeros((2, 2), dtype=np.float32)}) for i, name in enumerate(SHARDS)}
    index = {
        "metadata": {"total_size": sum(len(data) for data in shards.values())},
        "weight_map": {f"layer{i}.weight": name for i, name in enumerate(SHARDS)},
    }
    documents = {
        "config.json": {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss"},
        "generation_config.json": {"eos_token_id": [200002, 199999, 200012]},
        "model.safetensors.index.json": index,
        "tokenizer.json": {"version": "1.0"},
        "tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast"},
    }
    return {
        **shards,
        **{name: json.dumps(document).encode() for name, document in documents.items()},
        "chat_template.jinja": b"{% for m in messages %}{{ m.content }}{% endfor %}",
        "metal/model.bin": b"\0" * 8,
    }


def upload(s3: Any, files: dict[str, bytes], prefix: str) -> str:
    for name, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=data)
    return f"s3://{BUCKET}/{prefix}"


def client(service: str, emulator: BedrockEmulator) -> Any:
    return SESSION.client(service, endpoint_url=emulator.url, config=NO_RETRIES)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        s3_client = SESSION.client("s3")
        s3_client.create_bucket(Bucket=BUCKET)
        upload(s3_client, tiny_model_files(), PREFIX)
        yield s3_client


@pytest.fixture
def emulator(s3: Any) -> Iterator[BedrockEmulator]:
    with BedrockEmulator(lambda: SESSION.client("s3")) as emu:
        yield emu


@pytest.fixture
def bedrock(emulator: BedrockEmulator) -> Any:
    return client("bedrock", emulator)


@pytest.fixture
def runtime(emulator: BedrockEmulator) -> Any:
    return client("bedrock-runtime", emulator)


def create_job(bedrock: Any, job_name: str = "import-1", model_name: str = "tiny", **overrides: Any) -> str:
    request = {
        "jobName": job_name,
        "importedModelName": model_name,
        "roleArn": ROLE_ARN,
        "modelDataSource": {"s3DataSource": {"s3Uri": S3_URI}},
        **overrides,
    }
    return bedrock.create_model_import_job(**request)["jobArn"]


def finish_job(bedrock: Any, job_identifier: str) -> dict[str, Any]:
    """Poll until the job leaves InProgress (the default behaviour needs three polls)."""
    for _ in range(10):
        job = bedrock.get_model_import_job(jobIdentifier=job_identifier)
        if job["status"] != "InProgress":
            return job
    raise AssertionError("the import job never finished")


def import_model(bedrock: Any, job_name: str = "import-1", model_name: str = "tiny", **overrides: Any) -> str:
    job = finish_job(bedrock, create_job(bedrock, job_name, model_name, **overrides))
    assert job["status"] == "Completed", job.get("failureMessage")
    return job["importedModelArn"]


def chat(prompt: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": prompt}], "max_tokens": 64})


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def operations(emulator: BedrockEmulator) -> list[str]:
    return [call.operation for call in emulator.calls]


# -- the whole path ----------------------------------------------------------------------------------------------------


def test_import_then_invoke_as_bedrock_answers(emulator: BedrockEmulator, bedrock: Any, runtime: Any) -> None:
    job_arn = create_job(bedrock, clientRequestToken="run-1")
    assert job_arn.startswith("arn:aws:bedrock:us-east-1:123456789012:model-import-job/")

    first, second = (bedrock.get_model_import_job(jobIdentifier=job_arn) for _ in range(2))
    assert (first["status"], second["status"]) == ("InProgress", "InProgress")
    assert "endTime" not in second
    assert "importedModelArn" not in second
    job = bedrock.get_model_import_job(jobIdentifier="import-1")  # by name as well as by ARN
    assert job["status"] == "Completed"
    assert job["endTime"] >= job["creationTime"]  # botocore parsed the ISO 8601 timestamps into datetimes
    assert job["modelDataSource"] == {"s3DataSource": {"s3Uri": S3_URI}}

    model = bedrock.get_imported_model(modelIdentifier=job["importedModelArn"])
    assert model["modelArn"] == job["importedModelArn"]
    assert re.fullmatch(r"arn:aws:bedrock:us-east-1:123456789012:imported-model/[a-z0-9]{12}", model["modelArn"])
    assert (model["modelName"], model["jobArn"], model["jobName"]) == ("tiny", job_arn, "import-1")
    assert model["modelArchitecture"] == "gpt_oss"
    assert model["instructSupported"] is True
    assert model["customModelUnits"] == {"customModelUnitsPerModelCopy": 1, "customModelUnitsVersion": "v1.0"}
    assert model["creationTime"].tzinfo is not None

    for _ in range(2):  # cold start
        with pytest.raises(ClientError) as cold:
            runtime.invoke_model(modelId=model["modelArn"], body=chat("What is CMI?"))
        assert error_of(cold)[:2] == ("ModelNotReadyException", 429)
    response = runtime.invoke_model(
        modelId=model["modelArn"], body=chat("What is CMI?"), contentType="application/json"
    )
    assert response["contentType"] == "application/json"
    reply = json.loads(response["body"].read())
    assert reply["object"] == "chat.completion"
    assert reply["id"]
    assert isinstance(reply["created"], int)
    assert reply["model"] == model["modelArn"]
    assert reply["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! You asked: What is CMI?",
                # GPT-OSS answers like a reasoning model: its reasoning comes first, apart from the content.
                "reasoning_content": "The user asks: What is CMI? I should answer in one short sentence.",
            },
            "finish_reason": "stop",
        }
    ]
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert [m.invocations for m in emulator.models] == [1]


def test_requests_under_mock_aws_reach_the_emulator(emulator: BedrockEmulator, bedrock: Any) -> None:
    # At its AWS URL, moto answers for bedrock itself, and it has no import jobs...
    with pytest.raises(NotImplementedError):
        SESSION.client("bedrock", config=NO_RETRIES).list_model_import_jobs()
    # ...while requests to the emulator's 127.0.0.1 URL pass through moto untouched.
    job_arn = create_job(bedrock)
    assert bedrock.list_model_import_jobs()["modelImportJobSummaries"][0]["jobArn"] == job_arn
    assert operations(emulator) == ["CreateModelImportJob", "ListModelImportJobs"]


def test_endpoint_environment_variables_route_both_services(
    emulator: BedrockEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", emulator.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", emulator.url)
    boto3.client("bedrock", region_name=REGION, config=NO_RETRIES).list_imported_models()
    with pytest.raises(ClientError) as missing:
        boto3.client("bedrock-runtime", region_name=REGION, config=NO_RETRIES).invoke_model(
            modelId="absent", body=chat("hi")
        )
    assert error_of(missing)[:2] == ("ResourceNotFoundException", 404)
    assert operations(emulator) == ["ListImportedModels", "InvokeModel"]


# -- every error, as botocore parses it ------------------------------------------------------------------------------


def _raise_internal_error(_emulator: BedrockEmulator, _bedrock: Any, _runtime: Any) -> None:
    def broken_factory() -> Any:
        raise RuntimeError("no S3 today")

    with BedrockEmulator(broken_factory) as broken:
        create_job(client("bedrock", broken))


def _raise_conflict(_emulator: BedrockEmulator, bedrock: Any, _runtime: Any) -> None:
    import_model(bedrock)
    create_job(bedrock, job_name="import-2")


def _raise_quota(_emulator: BedrockEmulator, bedrock: Any, _runtime: Any) -> None:
    create_job(bedrock)
    create_job(bedrock, job_name="import-2", model_name="tiny-2")


def _raise_throttling(emulator: BedrockEmulator, bedrock: Any, _runtime: Any) -> None:
    emulator.behaviour.throttle_create_times = 1
    create_job(bedrock)


def _raise_access_denied(emulator: BedrockEmulator, bedrock: Any, _runtime: Any) -> None:
    emulator.behaviour.access_denied = True
    create_job(bedrock)


def _raise_not_ready(_emulator: BedrockEmulator, bedrock: Any, runtime: Any) -> None:
    runtime.invoke_model(modelId=import_model(bedrock), body=chat("hi"))


@pytest.mark.parametrize(
    ("expected_code", "expected_status", "trigger"),
    [
        ("ValidationException", 400, lambda _e, bedrock, _r: create_job(bedrock, job_name="bad_name")),
        ("ServiceQuotaExceededException", 400, _raise_quota),
        ("ThrottlingException", 429, _raise_throttling),
        ("ResourceNotFoundException", 404, lambda _e, bedrock, _r: bedrock.get_model_import_job(jobIdentifier="nope")),
        ("ConflictException", 400, _raise_conflict),
        ("AccessDeniedException", 403, _raise_access_denied),
        ("InternalServerException", 500, _raise_internal_error),
        ("ModelNotReadyException", 429, _raise_not_ready),
    ],
)
def test_each_error_reaches_boto3_as_a_client_error_with_its_code(
    emulator: BedrockEmulator, expected_code: str, expected_status: int, trigger: Callable[..., Any]
) -> None:
    """Codes and statuses as botocore's models give them (ConflictException is 400 there)."""
    with pytest.raises(ClientError) as excinfo:
        trigger(emulator, client("bedrock", emulator), client("bedrock-runtime", emulator))
    code, status, message = error_of(excinfo)
    assert (code, status) == (expected_code, expected_status)
    assert message
    assert excinfo.value.response["ResponseMetadata"]["RequestId"]


# -- import decisions --------------------------------------------------------------------------------------------------


def _without(*names: str) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        for name in names:
            del files[name]

    return change


def _with_json(name: str, document: Any) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        files[name] = json.dumps(document).encode()

    return change


def _with_file(name: str, data: bytes) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        files[name] = data

    return change


def _all(*changes: Callable[[dict[str, bytes]], None]) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        for each in changes:
            each(files)

    return change


def _with_index_metadata(metadata: dict[str, Any] | None) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        index = json.loads(files["model.safetensors.index.json"])
        if metadata is None:
            del index["metadata"]
        else:
            index["metadata"] = metadata
        files["model.safetensors.index.json"] = json.dumps(index).encode()

    return change


@pytest.mark.parametrize(
    ("change", "expected_message"),
    [
        pytest.param(_without("config.json"), "config.json was not found", id="no-config"),
        pytest.param(
            _with_json("config.json", {"model_type": "phi3"}),
            f"'phi3' is not supported. Supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}.",
            id="unsupported-architecture",
        ),
        pytest.param(
            _with_json("config.json", ["not", "an", "object"]), "config.json is not a valid JSON", id="bad-config"
        ),
        pytest.param(
            _without(*SHARDS, "model.safetensors.index.json"),
            "No model weights in .safetensors format",
            id="no-weights",
        ),
        pytest.param(_with_index_metadata(None), "missing the required 'metadata' object", id="index-without-metadata"),
        pytest.param(
            _with_index_metadata({"total_size": 1, "total_parameters": 20}),
            "unsupported field 'metadata.total_parameters'",
            id="index-metadata-extra-field",
        ),
        pytest.param(_without(SHARDS[1]), f"{SHARDS[1]} listed in model.safetensors.index.json", id="missing-shard"),
        pytest.param(
            _without("tokenizer_config.json"), "tokenizer_config.json was not found", id="no-tokenizer-config"
        ),
        pytest.param(_without("tokenizer.json"), "No tokenizer was found", id="no-tokenizer"),
        pytest.param(
            _with_json("tokenizer_config.json", {"tokenizer_class": "BertTokenizerFast"}),
            "tokenizer class 'BertTokenizerFast' is not supported",
            id="unsupported-tokenizer",
        ),
        pytest.param(
            _with_json("config.json", {"architectures": ["LlamaForSequenceClassification"], "model_type": "llama"}),
            "LlamaForSequenceClassification is not supported: only text generation models",
            id="classification-head",
        ),
        pytest.param(
            _with_json(
                "config.json",
                {
                    "architectures": ["GptOssForCausalLM"],
                    "model_type": "gpt_oss",
                    "quantization_config": {"quant_method": "mxfp4"},
                },
            ),
            "declares mxfp4 quantization, but no quantized weights were found",
            id="stale-quantization-config",
        ),
    ],
)
def test_import_fails_for_the_reasons_bedrock_gives(
    s3: Any,
    bedrock: Any,
    change: Callable[[dict[str, bytes]], None],
    expected_message: str,
) -> None:
    files = tiny_model_files()
    change(files)
    broken_uri = upload(s3, files, "models/broken/")

    job = finish_job(bedrock, create_job(bedrock, modelDataSource={"s3DataSource": {"s3Uri": broken_uri}}))

    assert job["status"] == "Failed"
    assert expected_message in job["failureMessage"]
    assert "endTime" in job
    assert "importedModelArn" not in job
    assert bedrock.list_imported_models()["modelSummaries"] == []


def test_a_declared_quantization_with_quantized_tensors_imports(s3: Any, bedrock: Any) -> None:
    """Whether Bedrock imports quantized checkpoints is undocumented: the emulator lets them through."""
    files = tiny_model_files()
    blocks = {"layer0.mlp.experts.gate_up_proj_blocks": np.zeros((2, 16), dtype=np.uint8)}
    files[SHARDS[0]] = save({"layer0.weight": np.zeros((2, 2), dtype=np.float32)} | blocks)
    config = {
        "architectures": ["GptOssForCausalLM"],
        "model_type": "gpt_oss",
        "quantization_config": {"quant_method": "mxfp4"},
    }
    files["config.json"] = json.dumps(config).encode()
    uri = upload(s3, files, "models/mxfp4/")
    job = finish_job(bedrock, create_job(bedrock, modelDataSource={"s3DataSource": {"s3Uri": uri}}))
    assert job["status"] == "Completed", job.get("failureMessage")


def test_gpt_oss_with_the_two_id_generation_config_imports_then_every_invocation_fails(
    s3: Any, emulator: BedrockEmulator, bedrock: Any, runtime: Any
) -> None:
    emulator.behaviour.not_ready_invocations = 0
    files = tiny_model_files()
    files["generation_config.json"] = json.dumps({"eos_token_id": [200002, 199999]}).encode()
    uri = upload(s3, files, "models/two-ids/")
    arn = import_model(bedrock, modelDataSource={"s3DataSource": {"s3Uri": uri}})
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            runtime.invoke_model(modelId=arn, body=chat("hi"))
        code, status, message = error_of(excinfo)
        assert (code, status) == ("ModelErrorException", 424)
        assert "end-of-sequence" in message


@pytest.mark.parametrize(("region", "imports"), [("us-east-1", True), ("us-east-2", False), ("eu-central-1", False)])
def test_gpt_oss_imports_in_us_east_1_only(s3: Any, region: str, imports: bool) -> None:
    with BedrockEmulator(lambda: SESSION.client("s3"), region=region) as emulator:
        bedrock = client("bedrock", emulator)
        job = finish_job(bedrock, create_job(bedrock))
    assert (job["status"] == "Completed") is imports
    if not imports:
        assert f"cannot be imported in {region}" in job["failureMessage"]


def test_no_import_job_outside_the_custom_model_import_regions(s3: Any) -> None:
    with (
        BedrockEmulator(lambda: SESSION.client("s3"), region="eu-west-1") as emulator,
        pytest.raises(ClientError) as excinfo,
    ):
        create_job(client("bedrock", emulator))
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert "eu-west-1" in message


def test_an_unreadable_bucket_fails_the_job(bedrock: Any) -> None:
    job = finish_job(bedrock, create_job(bedrock, modelDataSource={"s3DataSource": {"s3Uri": "s3://absent-bucket/m/"}}))
    assert job["status"] == "Failed"
    assert "NoSuchBucket" in job["failureMessage"]


@pytest.mark.parametrize(
    ("change", "instruct_supported"),
    [
        pytest.param(
            _all(_without("tokenizer.json"), _with_file("tokenizer.model", b"sentencepiece")),
            True,
            id="sentencepiece-tokenizer-model",
        ),
        pytest.param(
            _all(
                _without(*SHARDS, "model.safetensors.index.json", "chat_template.jinja"),
                _with_file("model.safetensors", save({"w": np.zeros(2, dtype=np.float32)})),
            ),
            False,
            id="single-file-without-chat-template",
        ),
        pytest.param(
            _all(
                _with_index_metadata({}),
                _without("chat_template.jinja"),
                _with_json("chat_template.json", {"chat_template": "{{ messages }}"}),
            ),
            True,
            id="empty-index-metadata-and-chat-template-json",
        ),
        pytest.param(
            _all(
                _without("chat_template.jinja"),
                _with_json("tokenizer_config.json", {"tokenizer_class": "Qwen2Tokenizer", "chat_template": "{{ m }}"}),
            ),
            True,
            id="chat-template-inside-tokenizer-config",
        ),
    ],
)
def test_accepted_variants_import_and_report_chat_template_support(
    s3: Any,
    bedrock: Any,
    change: Callable[[dict[str, bytes]], None],
    instruct_supported: bool,
) -> None:
    files = tiny_model_files()
    change(files)
    uri = upload(s3, files, "models/variant/")

    model_arn = import_model(bedrock, modelDataSource={"s3DataSource": {"s3Uri": uri}})

    assert bedrock.get_imported_model(modelIdentifier=model_arn)["instructSupported"] is instruct_supported


def test_custom_model_units_grow_with_weight_size() -> None:
    assert [custom_model_units_for(size) for size in (0, 10 * 10**9, 10 * 10**9 + 1, 41 * 10**9)] == [1, 1, 2, 5]


def test_forced_failure_message(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.force_fail_message = "Internal failure while importing the model."
    job = finish_job(bedrock, create_job(bedrock))
    assert (job["status"], job["failureMessage"]) == ("Failed", "Internal failure while importing the model.")
    assert emulator.models == []


# -- job lifecycle -----------------------------------------------------------------------------------------------------


def test_job_waits_for_wall_time_as_well_as_polls(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.import_polls = 0
    emulator.behaviour.import_seconds = 0.3
    job_arn = create_job(bedrock)
    assert bedrock.get_model_import_job(jobIdentifier=job_arn)["status"] == "InProgress"
    time.sleep(0.35)
    assert bedrock.get_model_import_job(jobIdentifier=job_arn)["status"] == "Completed"


def test_job_that_never_completes_until_told(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.import_never_completes = True
    job_arn = create_job(bedrock)
    statuses = {bedrock.get_model_import_job(jobIdentifier=job_arn)["status"] for _ in range(6)}
    assert statuses == {"InProgress"}
    assert emulator.jobs[0].polls == 6
    emulator.behaviour.import_never_completes = False
    assert bedrock.get_model_import_job(jobIdentifier=job_arn)["status"] == "Completed"


# -- CreateModelImportJob rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected_fragments"),
    [
        ({"jobName": "import_1"}, ["'jobName'", "regular expression pattern"]),
        ({"jobName": "a" * 64}, ["'jobName'", "length less than or equal to 63"]),
        ({"importedModelName": "tiny.model"}, ["'importedModelName'", "regular expression pattern"]),
        ({"roleArn": "arn:aws:iam::123456789012:user/someone"}, ["'roleArn'"]),
        (
            {"modelDataSource": {"s3DataSource": {"s3Uri": "s3://Bad_Bucket/m/"}}},
            ["modelDataSource.s3DataSource.s3Uri"],
        ),
        ({"modelDataSource": {"s3DataSource": {"s3Uri": "https://bucket/m/"}}}, ["s3Uri"]),
        ({"clientRequestToken": "-starts-with-dash"}, ["'clientRequestToken'"]),
        ({"jobName": "import_1", "importedModelName": "tiny.model"}, ["2 validation errors detected"]),
    ],
)
def test_create_validates_the_request(
    emulator: BedrockEmulator, bedrock: Any, overrides: dict[str, Any], expected_fragments: list[str]
) -> None:
    with pytest.raises(ClientError) as excinfo:
        create_job(bedrock, **overrides)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert all(fragment in message for fragment in expected_fragments), message
    assert emulator.jobs == []


def test_job_names_can_never_be_reused(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.force_fail_message = "Import failed."
    finish_job(bedrock, create_job(bedrock, job_name="failed-job"))
    emulator.behaviour.force_fail_message = None
    model_arn = import_model(bedrock, job_name="done-job")
    bedrock.delete_imported_model(modelIdentifier=model_arn)

    for job_name in ("failed-job", "done-job"):
        with pytest.raises(ClientError) as excinfo:
            create_job(bedrock, job_name=job_name, model_name="another")
        assert error_of(excinfo) == ("ValidationException", 400, "The provided job name is currently in use.")


def test_an_existing_model_name_conflicts(bedrock: Any) -> None:
    import_model(bedrock, model_name="tiny")
    with pytest.raises(ClientError) as excinfo:
        create_job(bedrock, job_name="import-2", model_name="tiny")
    assert error_of(excinfo) == ("ConflictException", 400, "Model with name tiny already exists.")


def test_a_repeated_client_request_token_returns_the_first_job(emulator: BedrockEmulator, bedrock: Any) -> None:
    first = create_job(bedrock, clientRequestToken="run-42")
    # The first job is still InProgress: a new request would hit the quota, a repeated one must not.
    assert create_job(bedrock, clientRequestToken="run-42") == first
    # Bedrock documents that it ignores a repeated token without error, whatever else the request says.
    assert create_job(bedrock, job_name="import-2", clientRequestToken="run-42") == first
    assert len(emulator.jobs) == 1
    with pytest.raises(ClientError) as excinfo:
        create_job(bedrock, job_name="import-2", clientRequestToken="run-43")
    assert error_of(excinfo)[0] == "ServiceQuotaExceededException"


def test_one_import_job_at_a_time(bedrock: Any) -> None:
    first = create_job(bedrock)
    with pytest.raises(ClientError) as excinfo:
        create_job(bedrock, job_name="import-2", model_name="tiny-2")
    assert error_of(excinfo)[:2] == ("ServiceQuotaExceededException", 400)
    assert "concurrent model import jobs" in error_of(excinfo)[2]
    finish_job(bedrock, first)
    assert create_job(bedrock, job_name="import-2", model_name="tiny-2") != first


def test_concurrent_creates_start_one_job(emulator: BedrockEmulator, bedrock: Any) -> None:
    def attempt(index: int) -> str:
        try:
            create_job(bedrock, job_name=f"race-{index}", model_name=f"race-{index}")
        except ClientError as error:
            return error.response["Error"]["Code"]
        return "created"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(attempt, range(8)))
    assert outcomes == ["ServiceQuotaExceededException"] * 7 + ["created"]
    assert len(emulator.jobs) == 1


def test_imported_model_quota(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.imported_models_quota = 1
    model_arn = import_model(bedrock)
    with pytest.raises(ClientError) as excinfo:
        create_job(bedrock, job_name="import-2", model_name="tiny-2")
    assert error_of(excinfo)[0] == "ServiceQuotaExceededException"
    assert "maximum number of imported models (1)" in error_of(excinfo)[2]
    bedrock.delete_imported_model(modelIdentifier=model_arn)
    import_model(bedrock, job_name="import-2", model_name="tiny-2")


def test_create_throttling_counts_down(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.throttle_create_times = 2
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            create_job(bedrock)
        assert error_of(excinfo)[:2] == ("ThrottlingException", 429)
    create_job(bedrock)
    assert emulator.behaviour.throttle_create_times == 0
    assert operations(emulator) == ["CreateModelImportJob"] * 3
    assert len(emulator.jobs) == 1


def test_a_fresh_role_is_rejected_until_it_propagates(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.role_not_ready_times = 1
    with pytest.raises(ClientError) as excinfo:
        create_job(bedrock)
    code, _, message = error_of(excinfo)
    assert code == "ValidationException"
    assert "role ARN is invalid" in message
    assert create_job(bedrock)


def test_access_denied_names_the_missing_pass_role(emulator: BedrockEmulator, bedrock: Any) -> None:
    emulator.behaviour.access_denied = True
    with pytest.raises(ClientError) as excinfo:
        create_job(bedrock)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("AccessDeniedException", 403)
    assert f"iam:PassRole on resource: {ROLE_ARN}" in message


# -- lists and delete --------------------------------------------------------------------------------------------------


def test_list_filters_sorting_and_pages(emulator: BedrockEmulator, bedrock: Any) -> None:
    import_model(bedrock, job_name="alpha-1", model_name="alpha")
    emulator.behaviour.force_fail_message = "Import failed."
    finish_job(bedrock, create_job(bedrock, job_name="beta-1", model_name="beta"))
    emulator.behaviour.force_fail_message = None
    create_job(bedrock, job_name="alpha-2", model_name="alpha-two")

    def names(**filters: Any) -> list[str]:
        return [job["jobName"] for job in bedrock.list_model_import_jobs(**filters)["modelImportJobSummaries"]]

    assert names() == ["alpha-2", "beta-1", "alpha-1"]  # newest first by default
    assert names(sortOrder="Ascending") == ["alpha-1", "beta-1", "alpha-2"]
    assert names(statusEquals="Completed") == ["alpha-1"]
    assert names(statusEquals="Failed") == ["beta-1"]
    assert names(statusEquals="InProgress") == ["alpha-2"]
    assert names(nameContains="alpha") == ["alpha-2", "alpha-1"]
    assert names(statusEquals="InProgress", nameContains="beta") == []
    pages = list(bedrock.get_paginator("list_model_import_jobs").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(page["modelImportJobSummaries"]) for page in pages] == [2, 1]
    summary = bedrock.list_model_import_jobs(statusEquals="Completed")["modelImportJobSummaries"][0]
    assert summary["importedModelName"] == "alpha"
    assert summary["importedModelArn"].startswith("arn:aws:bedrock:")

    finish_job(bedrock, "alpha-2")
    models = bedrock.list_imported_models(nameContains="two")["modelSummaries"]
    assert [(m["modelName"], m["modelArchitecture"], m["instructSupported"]) for m in models] == [
        ("alpha-two", "gpt_oss", True)
    ]
    assert [m["modelName"] for m in bedrock.list_imported_models(sortOrder="Ascending")["modelSummaries"]] == [
        "alpha",
        "alpha-two",
    ]


def test_delete_removes_the_model_but_not_the_job(emulator: BedrockEmulator, bedrock: Any, runtime: Any) -> None:
    model_arn = import_model(bedrock)
    bedrock.delete_imported_model(modelIdentifier="tiny")

    with pytest.raises(ClientError) as get_error:
        bedrock.get_imported_model(modelIdentifier=model_arn)
    assert error_of(get_error)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as invoke_error:
        runtime.invoke_model(modelId=model_arn, body=chat("hi"))
    assert error_of(invoke_error)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as delete_error:
        bedrock.delete_imported_model(modelIdentifier=model_arn)
    assert error_of(delete_error)[0] == "ResourceNotFoundException"

    job = bedrock.get_model_import_job(jobIdentifier="import-1")
    assert (job["status"], job["importedModelArn"]) == ("Completed", model_arn)
    assert emulator.models == []
    assert import_model(bedrock, job_name="import-2", model_name="tiny") != model_arn  # the model name is free again


# -- InvokeModel -------------------------------------------------------------------------------------------------------


@pytest.fixture
def warm_model(emulator: BedrockEmulator, bedrock: Any) -> str:
    """An imported model that answers at once."""
    emulator.behaviour.not_ready_invocations = 0
    return import_model(bedrock)


def invoke(runtime: Any, model_id: str, body: str) -> dict[str, Any]:
    return json.loads(runtime.invoke_model(modelId=model_id, body=body)["body"].read())


def test_invoke_by_name_and_with_content_parts(runtime: Any, warm_model: str) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": "Ping?"}]}]})
    assert invoke(runtime, "tiny", body)["choices"][0]["message"]["content"] == "Hello! You asked: Ping?"


def test_invoke_quotes_the_last_user_message_and_stops_at_max_tokens(runtime: Any, emulator: BedrockEmulator) -> None:
    warm_model = emulator.add_imported_model("tiny-llama", S3_URI, architecture="llama", warm=True)
    body = json.dumps(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"},
            ],
            "max_tokens": 3,
            "temperature": 0.2,
        }
    )
    reply = invoke(runtime, warm_model, body)
    assert reply["choices"][0]["message"]["content"] == "Hello! You asked:"
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"] == {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}
    assert "second question" in invoke(runtime, warm_model, chat("second question"))["choices"][0]["message"]["content"]


def test_a_gpt_oss_model_reasons_first_and_is_cut_off_in_its_reasoning_by_a_small_budget(
    runtime: Any, warm_model: str
) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "Ping?"}], "max_tokens": 3})
    reply = invoke(runtime, warm_model, body)
    (choice,) = reply["choices"]
    assert choice["message"] == {"role": "assistant", "content": "", "reasoning_content": "The user asks:"}
    assert choice["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 3

    answered = invoke(runtime, warm_model, json.dumps({"messages": [{"role": "user", "content": "Ping?"}]}))
    assert answered["choices"][0]["message"]["content"] == "Hello! You asked: Ping?"
    assert answered["choices"][0]["finish_reason"] == "stop"


def test_an_imported_model_carries_the_tags_its_import_job_gave_it(emulator: BedrockEmulator, bedrock: Any) -> None:
    tags = [{"key": "modelferry:source", "value": "org/tiny@abc123"}, {"key": "team", "value": "ml"}]
    model_arn = import_model(bedrock, importedModelTags=tags)

    assert bedrock.list_tags_for_resource(resourceARN=model_arn)["tags"] == tags
    (summary,) = bedrock.list_imported_models()["modelSummaries"]
    assert summary["modelArn"] == model_arn
    seeded = emulator.add_imported_model("other", S3_URI, tags={"owner": "someone"})
    assert bedrock.list_tags_for_resource(resourceARN=seeded)["tags"] == [{"key": "owner", "value": "someone"}]
    with pytest.raises(ClientError) as missing:
        bedrock.list_tags_for_resource(resourceARN=model_arn + "x")
    assert error_of(missing)[0] == "ResourceNotFoundException"


def test_model_goes_cold_again_after_idling(emulator: BedrockEmulator, bedrock: Any, runtime: Any) -> None:
    emulator.behaviour.not_ready_invocations = 1
    emulator.behaviour.evict_after_seconds = 0.2
    model_arn = import_model(bedrock)

    def outcome() -> str:
        try:
            runtime.invoke_model(modelId=model_arn, body=chat("hi"))
        except ClientError as error:
            return error.response["Error"]["Code"]
        return "ok"

    assert [outcome(), outcome(), outcome()] == ["ModelNotReadyException", "ok", "ok"]
    time.sleep(0.3)
    assert [outcome(), outcome()] == ["ModelNotReadyException", "ok"]


def test_invoke_throttling_is_told_apart_from_not_ready_by_code(
    emulator: BedrockEmulator, runtime: Any, warm_model: str
) -> None:
    emulator.behaviour.throttle_invoke_times = 2
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            runtime.invoke_model(modelId=warm_model, body=chat("hi"))
        assert error_of(excinfo)[:2] == ("ThrottlingException", 429)
    assert invoke(runtime, warm_model, chat("hi"))["choices"][0]["message"]["content"]
    assert emulator.behaviour.throttle_invoke_times == 0


def test_malformed_then_empty_replies(emulator: BedrockEmulator, runtime: Any, warm_model: str) -> None:
    emulator.behaviour.invoke_malformed_times = 1
    emulator.behaviour.invoke_empty_content_times = 1
    raw = runtime.invoke_model(modelId=warm_model, body=chat("hi"))["body"].read()
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert invoke(runtime, warm_model, chat("hi"))["choices"][0]["message"]["content"] == ""
    assert invoke(runtime, warm_model, chat("hi"))["choices"][0]["message"]["content"] == "Hello! You asked: hi"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"prompt": "hi", "max_gen_len": 10}),
        json.dumps({"messages": []}),
        json.dumps({"messages": [{"content": "no role"}]}),
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}),
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}),
    ],
)
def test_invoke_rejects_bodies_that_are_not_chat_requests(runtime: Any, warm_model: str, body: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        runtime.invoke_model(modelId=warm_model, body=body)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("Malformed input request")


# -- standalone process ------------------------------------------------------------------------------------------------


def test_standalone_process_against_a_moto_server() -> None:
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, port = moto_server.get_host_and_port()
    s3_endpoint = f"http://{host}:{port}"
    process = None
    try:
        s3_client = SESSION.client("s3", endpoint_url=s3_endpoint)
        s3_client.create_bucket(Bucket=BUCKET)
        upload(s3_client, tiny_model_files(), PREFIX)
        env = {
            **os.environ,
            "PYTHONPATH": str(CLI_DIR),
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
        }
        behaviour = json.dumps({"import_polls": 0, "not_ready_invocations": 0})
        process = subprocess.Popen(  # noqa: S603 - this interpreter running our module with fixed arguments
            [
                sys.executable,
                "-m",
                "modelferry_cli.local.bedrock",
                "--port",
                "0",
                "--s3-endpoint",
                s3_endpoint,
                "--behaviour",
                behaviour,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        url = json.loads(process.stdout.readline())["url"]
        bedrock = SESSION.client("bedrock", endpoint_url=url, config=NO_RETRIES)
        runtime = SESSION.client("bedrock-runtime", endpoint_url=url, config=NO_RETRIES)

        model_arn = import_model(bedrock)
        reply = json.loads(runtime.invoke_model(modelId=model_arn, body=chat("over HTTP?"))["body"].read())
        assert reply["choices"][0]["message"]["content"] == "Hello! You asked: over HTTP?"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        moto_server.stop()
