"""Fault injection through the real state machine: every case runs the real definition on the local rig,
with a fault switched on in the local Hub, S3 (moto, through `s3_faults`), the copy Lambda or the Bedrock emulator,
and asserts the final status, the notification and the S3 state: every object under the model prefix is a planned
file whose bytes hash to what the Hub published, and no multipart upload is left open.

Copy-stage faults are armed when the first copy starts (`on_first_copy`), after Plan has pinned the commit and read
the safetensors headers, so they hit the copy and not Plan's pre-check. Shards are 3 MiB and the copy Lambda uses
1 MiB parts, so every shard is a multipart upload. Each case records a row of the table in docs/reliability.md
(`MF_FAULT_TABLE=docs/reliability.md pytest tests/reliability` rewrites it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest

from modelferry.contract import META_SOURCE_COMMIT
from modelferry_cli.local import template as cfn
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.hub.faults import Fault
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, REPO_ROOT, ExecutionReport, LocalRig
from tests.support import reliability_table as table
from tests.support.local_run import (
    PrefixState,
    assert_notified,
    assert_only_verified_objects,
    calls,
    cause_message,
    errors,
    keys,
    open_uploads,
    planned,
    s3,
    shard_repo,
)
from tests.support.s3_faults import S3Faults, s3_faults

pytestmark = [pytest.mark.workflow, pytest.mark.usefixtures("commit")]

REPO = "acme/gpt-oss-tiny"
MODEL = "gpt-oss-tiny"
SHARD = "model-00001-of-00002.safetensors"
REQUEST = {"repo_id": REPO, "model_name": MODEL}
MAP_FAILED = "States.ExceedToleratedFailureThreshold"


@pytest.fixture
def commit(hub: LocalHub) -> str:
    return str(hub.add_repo(REPO, shard_repo()))


@pytest.fixture
def faults(rig: LocalRig, small_parts: object) -> Iterator[S3Faults]:
    """S3 faults, with the copy Lambda on 1 MiB parts so shards go through UploadPart."""
    with s3_faults(rig) as armed:
        yield armed


def succeeded(report: ExecutionReport, rig: LocalRig) -> PrefixState:
    """SUCCEEDED, notified, and every planned file (and nothing else) verified under the model prefix."""
    assert report.status == "SUCCEEDED", cause_message(report)
    assert_notified(report)
    manifest = planned(rig)
    state = assert_only_verified_objects(manifest)
    assert set(state.verified) == {entry.path for entry in manifest.files}
    assert report.s3_uri == f"s3://{BUCKET}/{manifest.model_prefix}"
    return state


def failed(report: ExecutionReport, *, at: str, error: str) -> None:
    assert report.status == "FAILED"
    assert report.error == error, cause_message(report)
    assert_notified(report, failed_at=at, error=error)


def failed_in_copy(report: ExecutionReport, rig: LocalRig, *, child_error: str, path: str) -> PrefixState:
    """The copy of `path` failed with `child_error`: the Map fails as on AWS, nothing half-done is left in S3."""
    failed(report, at="Copy files", error=MAP_FAILED)
    copies = [result for _, event, result in calls(rig, "CopyFileFunction") if event["file"]["path"] == path]
    assert copies, f"{path} was never copied"
    assert all(result.get("errorType") == child_error for result in copies), copies
    # The Map reports only how many items failed: the notification names the file and its own error.
    assert [(f["path"], f["error"]) for f in failed_files(report)] == [(path, child_error)]
    assert path in report.notifications[0]["message"]
    assert child_error in report.notifications[0]["message"]
    state = assert_only_verified_objects(planned(rig))
    assert path not in state.verified
    return state


def failed_files(report: ExecutionReport) -> list[dict[str, str]]:
    (event,) = report.events
    return list(event["detail"]["failed_files"])


def failed_before_copy(report: ExecutionReport, *, error: str) -> None:
    failed(report, at="Plan", error=error)
    assert keys("models/") == []
    assert open_uploads() == []


# --- Hub ------------------------------------------------------------------------------------------------------------


def test_hub_429_burst_waits_for_the_ratelimit_reset(hub, rig, on_first_copy, hub_pauses, record) -> None:
    on_first_copy(lambda: hub.faults.add("rate_limit", path_glob="model-*", times=6, reset_seconds=7))

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert sum(1 for r in hub.requests if r.status == 429) == 6
    assert max(hub_pauses) == pytest.approx(7, abs=0.1)  # the RateLimit header's t=7, not a guess
    assert errors(rig, "CopyFileFunction") == []
    record("Hub", "6 x 429 with `RateLimit: t=7` on shard reads", report, "copy pauses until the reset, in the task")


def test_hub_429_past_the_task_budget_is_retried_by_the_state_machine(hub, rig, on_first_copy, record) -> None:
    on_first_copy(lambda: hub.faults.add("rate_limit", path_glob=SHARD, on=("cdn",), reset_seconds=900))

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "CopyFileFunction") == ["HubRateLimited"]
    assert any(kind == "retry" for kind, _ in rig.clock.waits)
    record(
        "Hub", "429 asking for 900 s (past the 120 s in-task budget)", report, "state machine Retry (60 s), then copied"
    )


@pytest.mark.parametrize("one_in", [2, 4])
@pytest.mark.usefixtures("small_parts")
def test_hub_answering_a_steady_share_of_every_request_with_429_still_succeeds(
    hub, rig, hub_pauses, record, one_in
) -> None:
    # From the first request on: Plan's listing, config and header reads, and every copy's resolve and range reads.
    hub.faults.add("rate_limit", on=("api", "resolve", "cdn"), times=None, one_in=one_in, reset_seconds=2)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    limited = {r.endpoint for r in hub.requests if r.status == 429}
    assert limited == {"api", "resolve", "cdn"}
    answered = len(hub.requests)
    assert sum(1 for r in hub.requests if r.status == 429) == pytest.approx(answered / one_in, abs=1)
    # every 429 was waited out inside its task: no stage failed, the state machine retried nothing
    assert errors(rig, "PlanFunction") == []
    assert errors(rig, "CopyFileFunction") == []
    # the waits are the Hub's t=2 (and back-off pauses, shorter): never a guess longer than the reset
    assert any(pause == pytest.approx(2, abs=0.05) for pause in hub_pauses)
    assert max(hub_pauses) <= 2.05
    record("Hub", f"429 (`RateLimit` t=2) on 1 in {one_in} of all requests", report, "every task waits, in the task")


def test_hub_429_during_plan_is_waited_out_in_plan(hub, rig, hub_pauses, record) -> None:
    hub.faults.add("rate_limit", on=("api",), times=2, reset_seconds=30)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "PlanFunction") == []
    assert hub_pauses.count(pytest.approx(30, abs=0.05)) == 2
    record("Hub", "2 x 429 (`t=30`) on the API during Plan", report, "Plan pauses until the reset, in the task")


def test_hub_429_past_plans_budget_is_retried_by_the_state_machine(hub, rig, record) -> None:
    hub.faults.add("rate_limit", on=("api",), times=1, reset_seconds=900)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "PlanFunction") == ["HubRateLimited"]
    record("Hub", "429 asking for 900 s during Plan (past its budget)", report, "Plan: HubRateLimited, Retry 30 s")


def test_hub_5xx_burst_during_copy_is_resumed(hub, rig, on_first_copy, record) -> None:
    on_first_copy(lambda: hub.faults.add("server_error", path_glob="model-*", on=("cdn",), times=3, status=503))

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert sum(1 for r in hub.requests if r.status == 503) == 3
    assert errors(rig, "CopyFileFunction") == []
    record("Hub", "3 x 503 on shard reads", report, "read retried with back-off, in the task")


def test_hub_500_during_plan_is_retried_in_plan(hub, rig, record) -> None:
    hub.faults.add("server_error", on=("api",), times=2, status=500)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "PlanFunction") == []
    assert sum(1 for r in hub.requests if r.status == 500) == 2
    record("Hub", "2 x 500 on the API during Plan", report, "retried with back-off, in the task")


def test_hub_500_that_never_ends_fails_the_copy_cleanly(hub, rig, on_first_copy, record) -> None:
    on_first_copy(lambda: hub.faults.add("server_error", path_glob=SHARD, on=("cdn",), times=None))

    report = rig.run(REQUEST)

    failed_in_copy(report, rig, child_error="HubUnavailable", path=SHARD)
    assert len(errors(rig, "CopyFileFunction")) == 5  # the first attempt and 4 retries (MaxAttempts 4)
    record("Hub", "500 on every read of one shard", report, "HubUnavailable after retries, Retry 10 s x4; aborted")


def test_hub_connection_reset_mid_body_is_resumed_where_it_broke(hub, rig, on_first_copy, record) -> None:
    on_first_copy(lambda: hub.faults.add("reset_after", path_glob=SHARD, on=("cdn",), times=2, after_bytes=200_000))

    report = rig.run(REQUEST)

    succeeded(report, rig)
    reads = [(r.range, r.status, r.body_bytes) for r in hub.requests if r.endpoint == "cdn" and r.range]
    cut = [span for span, _, sent in reads if sent == 200_000]
    assert len(cut) == 2, reads
    for span in cut:
        # resumed after the bytes that did arrive (a reset drops what was still in flight), not from the part's start
        first, last = (int(n) for n in span.removeprefix("bytes=").split("-"))
        starts = [int(r.removeprefix("bytes=").split("-")[0]) for r, status, _ in reads if r.endswith(f"-{last}")]
        assert any(first < start <= first + 200_000 for start in starts), reads  # (a resumed read may be cut too)
    assert errors(rig, "CopyFileFunction") == []
    record("Hub", "connection reset after 200 kB, twice", report, "read resumed from the byte where it broke")


def test_hub_body_cut_short_is_resumed(hub, rig, on_first_copy, record) -> None:
    on_first_copy(lambda: hub.faults.add("truncate", path_glob=SHARD, on=("cdn",), times=3, after_bytes=300_000))

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert sum(1 for r in hub.requests if r.endpoint == "cdn" and r.body_bytes == 300_000 and r.range) == 3
    assert errors(rig, "CopyFileFunction") == []
    record("Hub", "body cut short (Content-Length not met), 3 times", report, "read resumed, in the task")


def test_hub_one_corrupted_response_and_one_cut_connection_still_succeed(hub, rig, on_first_copy, record) -> None:
    other_shard = "model-00002-of-00002.safetensors"
    armed: list[Fault] = []
    on_first_copy(lambda: armed.append(hub.faults.add("corrupt", path_glob=SHARD, on=("cdn",), offset=700_000)))
    on_first_copy(
        lambda: armed.append(hub.faults.add("reset_after", path_glob=other_shard, on=("cdn",), after_bytes=100_000))
    )

    report = rig.run(REQUEST)

    succeeded(report, rig)  # every object verified against the Hub's sha256
    assert [fault.hits for fault in armed] == [1, 1]
    assert errors(rig, "CopyFileFunction") == []  # read again and resumed inside the copy
    assert open_uploads() == []  # the upload of the corrupted read was aborted before the re-read
    record("Hub", "one flipped byte in a shard, one connection cut", report, "shard read again; read resumed")


def test_hub_corrupted_header_read_in_plan_is_read_again(hub, rig, record) -> None:
    # the first body served for the shard is Plan's 8-byte header-length read: a flipped byte makes it absurd
    hub.faults.add("corrupt", path_glob=SHARD, on=("cdn",), offset=7)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "PlanFunction") == []
    record("Hub", "one flipped byte in a safetensors header read by Plan", report, "header read again, in Plan")


def test_hub_corrupted_config_read_in_plan_is_read_again(hub, rig, record) -> None:
    # Plan reads config.json first; its first byte flipped is not JSON, and the model would be refused
    flipped = hub.faults.add("corrupt", path_glob="config.json", on=("resolve",), offset=0)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert flipped.hits == 1
    assert errors(rig, "PlanFunction") == []
    record("Hub", "one flipped byte in config.json read by Plan", report, "read again (git blob sha1), in Plan")


@pytest.mark.parametrize(
    "target", [(SHARD, "cdn"), ("tokenizer.json", "resolve")], ids=["multipart-shard", "single-put-git-file"]
)
def test_hub_bytes_wrong_in_every_read_never_become_visible(hub, rig, on_first_copy, record, target) -> None:
    path, endpoint = target
    on_first_copy(lambda: hub.faults.add("corrupt", path_glob=path, on=(endpoint,), offset=1_500_000, times=None))

    report = rig.run(REQUEST)

    failed_in_copy(report, rig, child_error="ChecksumMismatch", path=path)
    messages = [
        result["errorMessage"] for _, event, result in calls(rig, "CopyFileFunction") if event["file"]["path"] == path
    ]
    assert messages
    assert all(f"same mismatch in 3 reads of {path}" in message for message in messages)
    assert not any(key.endswith(f"/{path}") for key in keys("models/"))
    assert open_uploads() == []
    record("Hub", f"a flipped byte in every read of {path}", report, "ChecksumMismatch after 3 reads, nothing stored")


def test_hub_xet_backed_files_behind_a_bridge_refusing_unranged_gets_are_copied(hub, rig, record) -> None:
    # every LFS file answers its resolve with X-Xet-Hash; the bridge answers 400 to a GET without Range of a file
    # above 1 MiB (every shard here), as it does for files of several tens of GB; the CDN URL expires once mid-copy
    hub.xet, hub.unranged_get_limit_bytes = True, 1024 * 1024
    expired = hub.faults.add("expired_url", path_glob=SHARD, on=("cdn",), status=410)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert expired.hits == 1
    assert not any(r.status == 400 for r in hub.requests)
    assert all(r.range is not None for r in hub.requests if r.endpoint == "cdn" and r.method == "GET")
    assert errors(rig, "CopyFileFunction") == []
    record(
        "Hub", "Xet-backed files; unranged GET refused; a CDN URL expired (410)", report, "ranged reads, resolved again"
    )


def test_hub_gated_repo_with_a_token_not_granted_fails_in_plan(hub, behaviour, record) -> None:
    hub.add_repo("acme/gated-model", gpt_oss_repo(), gated=True, token="hf_granted_to_someone_else")

    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour, hf_token="hf_not_granted") as rig:
        report = rig.run({"repo_id": "acme/gated-model", "model_name": "gated-model"})

        failed_before_copy(report, error="HubAccessDenied")
        assert any(r.status == 403 and r.has_auth for r in hub.requests)
        assert "licence" in report.notifications[0]["message"]
        record("Hub", "gated repo: 403 GatedRepo (token not granted)", report, "HubAccessDenied, not retried")


def test_hub_access_lost_mid_copy_fails_cleanly(hub, rig, on_first_copy, record) -> None:
    on_first_copy(lambda: hub.faults.add("forbidden_gated", path_glob="model-*", on=("resolve",), times=None))

    report = rig.run(REQUEST)

    failed(report, at="Copy files", error=MAP_FAILED)
    state = assert_only_verified_objects(planned(rig))
    assert not any(path.startswith("model-") for path in state.verified)
    assert set(errors(rig, "CopyFileFunction")) == {"HubAccessDenied"}, calls(rig, "CopyFileFunction")
    assert {f["error"] for f in failed_files(report)} == {"HubAccessDenied"}
    record("Hub", "403 GatedRepo on every shard, from the copy on", report, "HubAccessDenied, not retried")


@pytest.mark.parametrize(
    ("request_fields", "error"),
    [({"repo_id": "acme/no-such-model"}, "HubRepoNotFound"), ({"revision": "v9.9"}, "HubRevisionNotFound")],
    ids=["repo", "revision"],
)
def test_hub_repo_or_revision_not_found_fails_in_plan(rig, record, request_fields, error) -> None:
    report = rig.run({**REQUEST, **request_fields})

    failed_before_copy(report, error=error)
    assert errors(rig, "PlanFunction") == [error]
    record("Hub", f"{error.removeprefix('Hub').removesuffix('NotFound').lower()} not found (404)", report, error)


def test_branch_moving_during_the_copy_still_copies_the_planned_commit(hub, rig, commit, on_first_copy, record) -> None:
    moved: list[str] = []
    on_first_copy(lambda: moved.append(hub.add_repo(REPO, shard_repo(seed=1))))

    report = rig.run(REQUEST)

    state = succeeded(report, rig)
    assert len(moved) == 1
    assert moved[0] != commit
    assert report.output["plan"]["run"]["commit"] == commit
    assert report.s3_uri.endswith(f"/{commit}/")
    for path in state.verified:
        head = s3().head_object(Bucket=BUCKET, Key=f"models/{MODEL}/{commit}/{path}")
        assert head["Metadata"][META_SOURCE_COMMIT] == commit
    served = [r.path for r in hub.requests if r.endpoint == "resolve"]
    assert served
    assert not any(f"/resolve/{moved[0]}/" in path or "/resolve/main/" in path for path in served)
    record("Hub", "branch moved to a new commit during the copy", report, "copy pinned to the planned commit")


# --- S3 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "code"), [("slow_down", "SlowDown"), ("internal_error", "InternalError")])
def test_s3_burst_on_upload_part_is_absorbed_by_sdk_retries(rig, faults, record, kind, code) -> None:
    faults.add(kind, operations=("UploadPart",), times=3)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert faults.codes("UploadPart") == [code] * 3
    assert len(faults.backoff_delays) >= 3
    assert errors(rig, "CopyFileFunction") == []
    record("S3", f"3 x {code} on UploadPart", report, "botocore standard retries (8 attempts)")


def test_s3_slowdown_that_never_ends_fails_the_copy_cleanly(rig, faults, record) -> None:
    faults.add("slow_down", operations=("UploadPart",), key_glob=f"*/{SHARD}", times=None)

    report = rig.run(REQUEST)

    failed_in_copy(report, rig, child_error="TransferInterrupted", path=SHARD)
    assert len(errors(rig, "CopyFileFunction")) == 5
    record("S3", "SlowDown on every UploadPart of one shard", report, "botocore retries, then Retry 10 s x4; aborted")


def test_s3_access_denied_fails_the_copy_without_retrying(rig, faults, record) -> None:
    writes = ("PutObject", "CreateMultipartUpload", "UploadPart")
    faults.add("access_denied", operations=writes, key_glob="models/*", times=None)

    report = rig.run(REQUEST)

    failed(report, at="Copy files", error=MAP_FAILED)
    copies = calls(rig, "CopyFileFunction")
    assert {result["errorType"] for _, _, result in copies} == {"StorageAccessDenied"}
    assert len(copies) == len({event["file"]["path"] for _, event, _ in copies})  # one attempt per file
    assert {f["error"] for f in failed_files(report)} == {"StorageAccessDenied"}
    assert keys("models/") == []
    assert open_uploads() == []
    record("S3", "AccessDenied on every write under models/", report, "StorageAccessDenied, not retried")


# --- the copy Lambda --------------------------------------------------------------------------------------------------


def test_copy_failing_mid_file_is_aborted_and_retried(rig, faults, record) -> None:
    # Part 2 fails all 8 of botocore's attempts: the copy gives up mid-file and aborts; Step Functions retries it.
    faults.add("internal_error", operations=("UploadPart",), key_glob=f"*/{SHARD}", part_number=2, times=8)

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "CopyFileFunction") == ["TransferInterrupted"]
    assert faults.codes("UploadPart") == ["InternalError"] * 8
    record("Lambda", "copy fails mid-file (part 2 refused 8 times)", report, "upload aborted, Retry 10 s, copied")


def test_copy_killed_mid_file_is_retried_and_its_upload_left_to_the_lifecycle_rule(rig, faults, record) -> None:
    faults.add("kill", operations=("UploadPart",), key_glob=f"*/{SHARD}", part_number=2)

    report = rig.run(REQUEST)

    assert report.status == "SUCCEEDED", cause_message(report)
    assert_notified(report)
    assert errors(rig, "CopyFileFunction") == ["Lambda.Unknown"]
    # The killed attempt never sent its AbortMultipartUpload: its upload stays open, invisible to readers and to the
    # import, until the bucket's lifecycle rule aborts it. Every object is still verified.
    (orphan,) = open_uploads()
    assert orphan["UploadId"] in faults.killed_uploads
    assert orphan["Key"].endswith(f"/{SHARD}")
    record(
        "Lambda",
        "copy killed mid-file (no clean-up runs)",
        report,
        "Retry (Lambda.Unknown); the dead attempt's upload is left to the lifecycle rule",
    )
    faults.killed_uploads.clear()  # the test, not the dead function, cleans up
    s3().abort_multipart_upload(Bucket=BUCKET, Key=orphan["Key"], UploadId=orphan["UploadId"])
    assert_only_verified_objects(planned(rig))
    rules = cfn.load_template(REPO_ROOT / "template.yaml")["Resources"]["ModelBucket"]["Properties"]
    (abort_rule,) = [r for r in rules["LifecycleConfiguration"]["Rules"] if "AbortIncompleteMultipartUpload" in r]
    assert abort_rule["Status"] == "Enabled"


# --- Bedrock --------------------------------------------------------------------------------------------------------


def test_bedrock_throttling_is_retried(rig, behaviour, record) -> None:
    behaviour.throttle_create_times = 2
    behaviour.throttle_invoke_times = 2

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "StartImportFunction") == ["BedrockThrottled"] * 2
    assert "BedrockThrottled" in errors(rig, "VerifyModelFunction")
    assert len(rig.bedrock.jobs) == 1
    record("Bedrock", "ThrottlingException x2 on CreateModelImportJob and InvokeModel", report, "BedrockThrottled")


def test_bedrock_quota_held_by_another_import_is_waited_out(rig, behaviour, record) -> None:
    behaviour.import_polls = 0
    behaviour.import_holds_until_quota_refusals = 3
    boto3.client("bedrock", region_name=REGION, endpoint_url=rig.bedrock.url).create_model_import_job(
        jobName="someone-elses-import",
        importedModelName="someone-elses-model",
        roleArn="arn:aws:iam::123456789012:role/other",
        modelDataSource={"s3DataSource": {"s3Uri": f"s3://{BUCKET}/elsewhere/"}},
    )

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "StartImportFunction") == ["ImportQuotaExceeded"] * 3
    ours = [job for job in rig.bedrock.jobs if job.model_name == MODEL]
    assert len(ours) == 1
    record("Bedrock", "one-job quota held by another import (3 refusals)", report, "ImportQuotaExceeded, Retry 60 s")


def test_bedrock_job_failed_ends_failed_and_keeps_the_verified_copy(rig, behaviour, record) -> None:
    behaviour.force_fail_message = "Amazon Bedrock could not read the model weights."

    report = rig.run(REQUEST)

    failed(report, at="Wait for import", error="ImportJobFailed")
    assert "could not read the model weights" in report.notifications[0]["message"]
    state = assert_only_verified_objects(planned(rig))
    assert set(state.verified) == {entry.path for entry in planned(rig).files}
    record("Bedrock", "import job ends Failed", report, "ImportJobFailed with Bedrock's failureMessage")


def test_bedrock_not_ready_streak_is_waited_out(rig, behaviour, record) -> None:
    behaviour.not_ready_invocations = 6

    report = rig.run(REQUEST)

    succeeded(report, rig)
    assert errors(rig, "VerifyModelFunction") == ["ModelNotReady"] * 6
    assert rig.clock.waits.count(("retry", 60.0)) >= 6
    record("Bedrock", "ModelNotReadyException x6 (cold model)", report, "ModelNotReady, Retry every 60 s")


def test_bedrock_malformed_invoke_reply_fails_verification(rig, behaviour, record) -> None:
    behaviour.invoke_malformed_times = 1

    report = rig.run(REQUEST)

    failed(report, at="Verify model", error="VerificationFailed")
    assert "not JSON" in cause_message(report)
    assert len(rig.bedrock.models) == 1  # imported; a re-run with if_exists=reuse verifies it again
    assert_only_verified_objects(planned(rig))
    record("Bedrock", "InvokeModel answers bytes that are not JSON", report, "VerificationFailed, not retried")


# --- the table ------------------------------------------------------------------------------------------------------


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[str, str, ExecutionReport, str], None]:
    def add(layer: str, fault: str, report: ExecutionReport, handled_by: str) -> None:
        table.add_fault_row(request.node.name, layer, fault, report, handled_by, open_uploads=len(open_uploads()))

    return add
