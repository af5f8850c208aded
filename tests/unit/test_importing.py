"""Start and watch the import job: the exact CreateModelImportJob request (botocore Stubber), `if_exists`, retried
starts, the quota wait and its ceiling (a ledger in moto's S3), and each status GetModelImportJob can report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from modelferry.adapters.bedrock import describe_duration, translate_bedrock_error
from modelferry.adapters.s3 import get_json
from modelferry.contract import RunInfo
from modelferry.errors import (
    BedrockThrottled,
    BedrockUnavailable,
    ImportedModelExists,
    ImportedModelQuotaReached,
    ImportJobFailed,
    ImportQuotaExceeded,
    ImportQuotaWaitTimedOut,
    ImportRejected,
    ImportRoleNotReady,
    ImportTimedOut,
)
from modelferry.naming import CLIENT_REQUEST_TOKEN_PATTERN, JOB_NAME_PATTERN, client_request_token, import_job_name
from modelferry.stages.import_ import (
    check_import,
    create_job_request,
    start_import,
)

REGION = "us-east-1"
BUCKET = "models-bucket"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:modelferry:run-1"
MODEL = "med-gpt-oss-20b"
COMMIT = "a" * 40
S3_URI = f"s3://{BUCKET}/models/{MODEL}/{COMMIT}/"
JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-import-job/abcdefghijkl"
OTHER_JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-import-job/zzzzzzzzzzzz"
MODEL_ARN = "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdefghijkl"
OLD_MODEL_ARN = "arn:aws:bedrock:us-east-1:123456789012:imported-model/oldoldoldold"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_run(**overrides: Any) -> RunInfo:
    values: dict[str, Any] = {
        "run_id": "run-1",
        "execution_id": EXECUTION,
        "started_at": T0.isoformat(),
        "repo_id": "openai/gpt-oss-20b",
        "revision": "main",
        "commit": COMMIT,
        "model_name": MODEL,
        "bucket": BUCKET,
        "model_prefix": f"models/{MODEL}/{COMMIT}/",
        "s3_uri": S3_URI,
        "run_prefix": f"modelferry-runs/{MODEL}/run-1/",
        "job_name": import_job_name(MODEL, EXECUTION),
        "client_request_token": client_request_token(EXECUTION),
        "import_role_arn": "arn:aws:iam::123456789012:role/modelferry-import",
        "poll_seconds": 60,
        "if_exists": "fail",
        "verify_prompt": "hi",
        "verify_expect": None,
        "verify_max_tokens": 16,
        "allow_quantized": False,
    }
    return RunInfo(**{**values, **overrides})


RUN = make_run()


def date_header(moment: datetime) -> dict[str, Any]:
    return {"HTTPHeaders": {"date": format_datetime(moment, usegmt=True)}}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "bedrock",
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def no_model(stubber: Stubber, name: str = MODEL) -> None:
    stubber.add_client_error(
        "get_imported_model",
        "ResourceNotFoundException",
        f"Could not find imported model {name}.",
        404,
        expected_params={"modelIdentifier": name},
    )


def a_model(
    stubber: Stubber,
    *,
    s3_uri: str,
    arn: str = OLD_MODEL_ARN,
    job_name: str = "someone-else",
    job_arn: str = OTHER_JOB_ARN,
) -> None:
    stubber.add_response(
        "get_imported_model",
        {
            "modelArn": arn,
            "modelName": MODEL,
            "jobName": job_name,
            "jobArn": job_arn,
            "modelDataSource": {"s3DataSource": {"s3Uri": s3_uri}},
            "creationTime": T0,
        },
        {"modelIdentifier": MODEL},
    )


def created(stubber: Stubber, run: RunInfo = RUN, job_arn: str = JOB_ARN) -> None:
    stubber.add_response("create_model_import_job", {"jobArn": job_arn}, create_job_request(run))


# --- the request ------------------------------------------------------------------------------------------------------


def test_create_sends_exactly_the_names_token_source_and_tags(bedrock: tuple[Any, Stubber], s3: Any) -> None:
    client, stubber = bedrock
    no_model(stubber)
    stubber.add_response(
        "create_model_import_job",
        {"jobArn": JOB_ARN},
        {
            "jobName": RUN.job_name,
            "importedModelName": MODEL,
            "roleArn": "arn:aws:iam::123456789012:role/modelferry-import",
            "modelDataSource": {"s3DataSource": {"s3Uri": S3_URI}},
            "clientRequestToken": RUN.client_request_token,
            "jobTags": [
                {"key": "modelferry:execution", "value": "run-1"},
                {"key": "modelferry:source", "value": f"openai/gpt-oss-20b@{COMMIT}"},
            ],
            "importedModelTags": [
                {"key": "modelferry:source", "value": f"openai/gpt-oss-20b@{COMMIT}"},
                {"key": "modelferry:s3-uri", "value": S3_URI},
            ],
        },
    )

    started = start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600, now=T0)

    assert started.job_arn == JOB_ARN
    assert started.job_name == RUN.job_name
    assert (started.reused_model_arn, started.replaced_model_arn) == (None, None)
    assert JOB_NAME_PATTERN.fullmatch(RUN.job_name)
    assert len(RUN.job_name) <= 63
    assert CLIENT_REQUEST_TOKEN_PATTERN.fullmatch(RUN.client_request_token)


def test_tag_values_keep_only_characters_bedrock_accepts() -> None:
    run = make_run(s3_uri="s3://models-bucket/models/m/(draft)!/", run_id="run*1")
    request = create_job_request(run)
    values = [tag["value"] for tag in request["jobTags"] + request["importedModelTags"]]
    assert all(re.fullmatch(r"[a-zA-Z0-9\s._:/=+@-]{0,256}", value) for value in values), values
    assert request["modelDataSource"]["s3DataSource"]["s3Uri"] == run.s3_uri  # the source itself is untouched


# --- Bedrock's refusals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("ThrottlingException", "Too many requests, please wait before trying again.", BedrockThrottled),
        ("InternalServerException", "An internal error occurred.", BedrockUnavailable),
        ("ServiceUnavailableException", "Service unavailable.", BedrockUnavailable),
        (
            "ServiceQuotaExceededException",
            "You have reached the maximum number of concurrent model import jobs (1) for this Region.",
            ImportQuotaExceeded,
        ),
        (
            "ServiceQuotaExceededException",
            "You have reached the maximum number of imported models (3) for this account and Region.",
            ImportedModelQuotaReached,
        ),
        (
            "ValidationException",
            "The provided role ARN is invalid or cannot be assumed by Amazon Bedrock.",
            ImportRoleNotReady,
        ),
        ("ValidationException", "1 validation error detected: Value 'x_y' at 'jobName'", ImportRejected),
        ("AccessDeniedException", "not authorized to perform: iam:PassRole", ImportRejected),
        ("ConflictException", "Model with name m already exists.", ImportedModelExists),
    ],
)
def test_each_refusal_becomes_the_error_the_state_machine_expects(code: str, message: str, expected: type) -> None:
    from botocore.exceptions import ClientError

    error = translate_bedrock_error(
        ClientError({"Error": {"Code": code, "Message": message}}, "CreateModelImportJob"), "CreateModelImportJob"
    )
    assert type(error) is expected
    assert message in str(error)


def test_a_validation_error_fails_at_once_with_bedrocks_words(bedrock: tuple[Any, Stubber], s3: Any) -> None:
    client, stubber = bedrock
    no_model(stubber)
    stubber.add_client_error(
        "create_model_import_job", "ValidationException", "Value 's3://x' at 's3Uri' failed to satisfy constraint"
    )
    with pytest.raises(ImportRejected, match="ValidationException: Value 's3://x' at 's3Uri'"):
        start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600)


# --- retried starts ---------------------------------------------------------------------------------------------------


def test_a_retry_whose_job_name_is_spent_carries_on_with_its_own_job(bedrock: tuple[Any, Stubber], s3: Any) -> None:
    """If Bedrock did not honour the token, the name (unique to the execution) still finds the first attempt's job."""
    client, stubber = bedrock
    no_model(stubber)
    stubber.add_client_error(
        "create_model_import_job", "ValidationException", "The provided job name is currently in use."
    )
    stubber.add_response(
        "get_model_import_job",
        {
            "jobArn": JOB_ARN,
            "jobName": RUN.job_name,
            "importedModelName": MODEL,
            "roleArn": RUN.import_role_arn,
            "modelDataSource": {"s3DataSource": {"s3Uri": S3_URI}},
            "status": "InProgress",
            "creationTime": T0,
        },
        {"jobIdentifier": RUN.job_name},
    )

    assert start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600).job_arn == JOB_ARN


def test_a_retry_after_its_own_job_completed_is_not_mistaken_for_someone_elses_model(
    bedrock: tuple[Any, Stubber], s3: Any
) -> None:
    client, stubber = bedrock
    run = make_run(if_exists="replace")
    a_model(stubber, arn=MODEL_ARN, job_name=run.job_name, job_arn=JOB_ARN, s3_uri=S3_URI)
    # No delete, no create is queued: the Stubber fails any other call.

    started = start_import(run, bedrock=client, s3=s3, quota_wait_seconds=3600)

    assert started.job_arn == JOB_ARN  # the run's own job, as GetImportedModel names it: CheckImport finds it done
    assert (started.reused_model_arn, started.replaced_model_arn) == (None, None)


# --- if_exists --------------------------------------------------------------------------------------------------------


def test_if_exists_fail_refuses_a_model_from_other_weights(bedrock: tuple[Any, Stubber], s3: Any) -> None:
    client, stubber = bedrock
    a_model(stubber, s3_uri=f"s3://{BUCKET}/models/{MODEL}/{'b' * 40}/")
    with pytest.raises(ImportedModelExists, match=r'"if_exists": "reuse"') as excinfo:
        start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600)
    assert OLD_MODEL_ARN in str(excinfo.value)


def test_a_model_already_imported_from_the_same_weights_is_reused_not_imported_again(
    bedrock: tuple[Any, Stubber], s3: Any
) -> None:
    client, stubber = bedrock
    a_model(stubber, s3_uri=S3_URI.rstrip("/"))

    started = start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600)

    assert (started.job_arn, started.reused_model_arn) == (None, OLD_MODEL_ARN)


def test_if_exists_reuse_skips_the_import(bedrock: tuple[Any, Stubber], s3: Any) -> None:
    client, stubber = bedrock
    a_model(stubber, s3_uri=f"s3://{BUCKET}/elsewhere/")

    started = start_import(make_run(if_exists="reuse"), bedrock=client, s3=s3, quota_wait_seconds=3600)

    assert (started.job_arn, started.reused_model_arn) == (None, OLD_MODEL_ARN)


def test_if_exists_replace_deletes_then_imports_and_remembers_what_it_deleted(
    bedrock: tuple[Any, Stubber], s3: Any
) -> None:
    client, stubber = bedrock
    run = make_run(if_exists="replace")
    a_model(stubber, s3_uri=f"s3://{BUCKET}/elsewhere/")
    stubber.add_response(
        "list_model_import_jobs", {"modelImportJobSummaries": []}, {"statusEquals": "InProgress", "maxResults": 10}
    )
    stubber.add_response("delete_imported_model", {}, {"modelIdentifier": OLD_MODEL_ARN})
    created(stubber, run)

    started = start_import(run, bedrock=client, s3=s3, quota_wait_seconds=3600)

    assert (started.job_arn, started.replaced_model_arn) == (JOB_ARN, OLD_MODEL_ARN)
    assert get_json(s3, BUCKET, run.layout.replace_ledger) == {"replaced_model_arn": OLD_MODEL_ARN}


def test_if_exists_replace_keeps_the_old_model_while_another_import_holds_the_quota(
    bedrock: tuple[Any, Stubber], s3: Any
) -> None:
    client, stubber = bedrock
    run = make_run(if_exists="replace")
    a_model(stubber, s3_uri=f"s3://{BUCKET}/elsewhere/")
    stubber.add_response(
        "list_model_import_jobs",
        {
            "modelImportJobSummaries": [
                {"jobArn": OTHER_JOB_ARN, "jobName": "other", "status": "InProgress", "creationTime": T0}
            ],
            "ResponseMetadata": date_header(T0),
        },
    )

    with pytest.raises(ImportQuotaExceeded, match=OTHER_JOB_ARN):
        start_import(run, bedrock=client, s3=s3, quota_wait_seconds=3600)
    # no DeleteImportedModel was queued: the Stubber would have failed the call


def test_a_replace_retried_after_its_delete_still_reports_the_replaced_model(
    bedrock: tuple[Any, Stubber], s3: Any
) -> None:
    client, stubber = bedrock
    run = make_run(if_exists="replace")
    s3.put_object(
        Bucket=BUCKET,
        Key=run.layout.replace_ledger,
        Body=b'{"replaced_model_arn": "%s"}' % OLD_MODEL_ARN.encode(),
    )
    no_model(stubber)
    created(stubber, run)

    assert start_import(run, bedrock=client, s3=s3, quota_wait_seconds=3600).replaced_model_arn == OLD_MODEL_ARN


# --- the one-job quota and its ceiling --------------------------------------------------------------------------------


def refused_by_quota(stubber: Stubber, at: datetime) -> None:
    stubber.add_client_error(
        "create_model_import_job",
        "ServiceQuotaExceededException",
        "You have reached the maximum number of concurrent model import jobs (1) for this Region.",
        400,
        response_meta=date_header(at),
    )


def test_the_quota_wait_is_measured_from_the_first_refusal_and_ends_at_the_ceiling(
    bedrock: tuple[Any, Stubber], s3: Any
) -> None:
    client, stubber = bedrock
    for at in (T0, T0 + timedelta(minutes=50), T0 + timedelta(hours=1, minutes=1)):
        no_model(stubber)
        refused_by_quota(stubber, at)

    with pytest.raises(ImportQuotaExceeded, match="attempt 1"):
        start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600)
    with pytest.raises(ImportQuotaExceeded, match=r"waiting since 50 min \(3000 s\) ago, attempt 2"):
        start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600)
    with pytest.raises(ImportQuotaWaitTimedOut) as excinfo:
        start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600)

    message = str(excinfo.value)
    assert "1 h 1 min (3660 s) (3 attempts)" in message
    assert "ImportQuotaWaitSeconds" in message
    ledger = get_json(s3, BUCKET, RUN.layout.quota_ledger)
    assert ledger["first_refused_at"] == T0.isoformat()
    assert ledger["refusals"] == 3


def test_the_imported_models_quota_is_not_waited_for(bedrock: tuple[Any, Stubber], s3: Any) -> None:
    client, stubber = bedrock
    no_model(stubber)
    stubber.add_client_error(
        "create_model_import_job",
        "ServiceQuotaExceededException",
        "You have reached the maximum number of imported models (3) for this account and Region.",
    )
    with pytest.raises(ImportedModelQuotaReached, match="delete-imported-model"):
        start_import(RUN, bedrock=client, s3=s3, quota_wait_seconds=3600)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0  # no wait was started


# --- the wait loop ----------------------------------------------------------------------------------------------------


def job(status: str, *, answered: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "jobArn": JOB_ARN,
        "jobName": RUN.job_name,
        "importedModelName": MODEL,
        "roleArn": RUN.import_role_arn,
        "modelDataSource": {"s3DataSource": {"s3Uri": S3_URI}},
        "status": status,
        "creationTime": T0,
        "ResponseMetadata": date_header(answered),
        **extra,
    }


def test_in_progress_within_the_ceiling_reports_the_time_on_bedrocks_clock(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response("get_model_import_job", job("InProgress", answered=T0 + timedelta(minutes=7)))

    status = check_import(JOB_ARN, bedrock=client, timeout_seconds=3600)

    assert (status.status, status.elapsed_seconds, status.imported_model_arn) == ("InProgress", 420, None)


def test_in_progress_past_the_ceiling_says_how_long_and_which_job(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response("get_model_import_job", job("InProgress", answered=T0 + timedelta(hours=4, minutes=1)))

    with pytest.raises(ImportTimedOut) as excinfo:
        check_import(JOB_ARN, bedrock=client, timeout_seconds=4 * 3600)

    message = str(excinfo.value)
    assert JOB_ARN in message
    assert "after waiting 4 h 1 min (14460 s)" in message
    assert "ImportTimeoutSeconds" in message


def test_failed_carries_bedrocks_failure_message(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response(
        "get_model_import_job",
        job(
            "Failed",
            answered=T0 + timedelta(minutes=9),
            endTime=T0 + timedelta(minutes=8),
            failureMessage="The model architecture 'phi3' is not supported.",
        ),
    )
    with pytest.raises(ImportJobFailed, match=r"failed after 8 min \(480 s\): The model architecture 'phi3'") as exc:
        check_import(JOB_ARN, bedrock=client, timeout_seconds=3600)
    assert JOB_ARN in str(exc.value)


def test_completed_reports_the_model_and_the_import_duration(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response(
        "get_model_import_job",
        job(
            "Completed",
            answered=T0 + timedelta(hours=2),
            endTime=T0 + timedelta(minutes=12),
            importedModelArn=MODEL_ARN,
        ),
    )
    status = check_import(JOB_ARN, bedrock=client, timeout_seconds=3600)
    assert (status.status, status.imported_model_arn, status.elapsed_seconds) == ("Completed", MODEL_ARN, 720)


def test_completed_without_a_model_arn_finds_the_model_by_name(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response("get_model_import_job", job("Completed", answered=T0, endTime=T0))
    stubber.add_response("get_imported_model", {"modelArn": MODEL_ARN, "modelName": MODEL}, {"modelIdentifier": MODEL})
    assert check_import(JOB_ARN, bedrock=client, timeout_seconds=3600).imported_model_arn == MODEL_ARN


def test_a_throttled_poll_is_retryable(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_client_error("get_model_import_job", "ThrottlingException", "Rate exceeded", 429)
    with pytest.raises(BedrockThrottled):
        check_import(JOB_ARN, bedrock=client, timeout_seconds=3600)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (900, "15 min (900 s)"), (3600, "1 h (3600 s)"), (21660, "6 h 1 min (21660 s)")],
)
def test_durations_read_for_people_and_scripts(seconds: int, text: str) -> None:
    assert describe_duration(seconds) == text


def test_against_the_emulator_the_ceiling_counts_the_simulated_seconds(s3: Any) -> None:
    """The local rig's emulator runs its clock ahead by the waits it skipped: the ceiling is reached without waiting."""
    from modelferry_cli.local.bedrock import BedrockEmulator, EmulatorBehaviour

    skipped = [0.0]
    behaviour = EmulatorBehaviour(import_never_completes=True)
    with BedrockEmulator(
        lambda: boto3.client("s3", region_name=REGION), behaviour, simulated_seconds=lambda: skipped[0]
    ) as emulator:
        client = boto3.client("bedrock", region_name=REGION, endpoint_url=emulator.url)
        job_arn = client.create_model_import_job(**create_job_request(RUN))["jobArn"]
        assert check_import(job_arn, bedrock=client, timeout_seconds=3600).elapsed_seconds < 60

        skipped[0] = 3 * 3600.0  # three hours of Wait states, recorded instead of slept

        with pytest.raises(ImportTimedOut, match=r"after waiting (2 h 59 min \(10799 s\)|3 h \(10800 s\))"):
            check_import(job_arn, bedrock=client, timeout_seconds=3600)
