"""The transfer engine against the local Hub (real HTTP on 127.0.0.1, switchable faults) and moto's S3 in-process.

Files are a few MiB with 1 MiB parts, so multipart uploads, parallel parts and resumed ranges all happen.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import moto.s3.models
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws

from modelferry.adapters.hub import HubClient
from modelferry.adapters.hub_http import RetryPolicy
from modelferry.contract import (
    META_BLOB_SHA1,
    META_SHA256,
    META_SOURCE_COMMIT,
    META_SOURCE_REPO,
    CopyResult,
    ManifestEntry,
)
from modelferry.errors import (
    ChecksumMismatch,
    HubAccessDenied,
    HubRateLimited,
    HubUnavailable,
    InvalidRequest,
    SourceChanged,
    StorageAccessDenied,
    TransferInterrupted,
)
from modelferry.transfer.engine import TransferOptions, copy_file, part_size_for
from modelferry.transfer.hub_reader import HubFileReader
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import safetensors_bytes
from tests.support.clocks import record_hub_pauses

MiB = 1024 * 1024
REPO = "org/tiny-model"
BUCKET = "model-bucket"
OPTIONS = TransferOptions(
    min_part_size=MiB,
    single_put_max_bytes=MiB,
    parts_in_flight=3,
)
FILES = {
    "model.safetensors": safetensors_bytes({"weight": ("U8", (4 * MiB + 12345,))}, seed=7),  # 5 parts
    "small.safetensors": safetensors_bytes({"bias": ("U8", (300_000,))}, seed=8),  # one PutObject
    "config.json": b'{"model_type": "gpt_oss"}\n',  # plain git file: checked by its blob sha1
    "empty.txt": b"",
}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1024)  # S3 wants 5 MiB parts; tests use 1 MiB
    with mock_aws():
        client = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 3}))
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(scope="module")
def running_hub() -> Iterator[tuple[LocalHub, str]]:
    with LocalHub() as local_hub:
        yield local_hub, local_hub.add_repo(REPO, FILES)


@pytest.fixture
def hub(running_hub: tuple[LocalHub, str]) -> Iterator[LocalHub]:
    """The module's hub with no faults armed and an empty request log (starting one per test costs 0.5 s)."""
    local_hub, _ = running_hub
    local_hub.faults.clear()
    settle(local_hub)
    local_hub.clear_requests()
    yield local_hub
    local_hub.faults.clear()


def settle(hub: LocalHub) -> None:
    """Let the hub log the requests it has answered: it logs each one just after its response has gone out."""
    logged = -1
    while logged != len(hub.requests):
        logged = len(hub.requests)
        time.sleep(0.05)


@pytest.fixture
def commit(running_hub: tuple[LocalHub, str]) -> str:
    return running_hub[1]


@pytest.fixture
def entries(hub: LocalHub, commit: str) -> dict[str, ManifestEntry]:
    """What Plan would write for the repo: the Hub's own sizes, sha256 and blob ids."""
    return {
        f.path: ManifestEntry(path=f.path, size=f.size, sha256=f.sha256, blob_id=f.blob_id, key=f"models/{f.path}")
        for f in HubClient(hub.url).list_files(REPO, commit)
    }


def copy(
    hub: LocalHub,
    commit: str,
    s3: Any,
    entry: ManifestEntry,
    *,
    retries: int = 5,
    wait_budget_seconds: float = 120.0,
    **options: Any,
) -> CopyResult:
    """Copy `entry` with a Hub client whose back-off is short (the waits are real here unless a test records them)."""
    client = HubClient(
        hub.url, wait_budget_seconds=wait_budget_seconds, retry=RetryPolicy(retries, 0.01, max_backoff_seconds=0.05)
    )
    return copy_file(
        entry,
        hub=client,
        repo_id=REPO,
        commit=commit,
        bucket=BUCKET,
        s3_client=s3,
        options=OPTIONS.model_copy(update=options),
    )


def stored(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def assert_nothing_stored(s3: Any, key: str) -> None:
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def cdn_ranges(hub: LocalHub) -> list[tuple[str | None, int, int]]:
    return [(r.range, r.status, r.body_bytes) for r in hub.requests if r.endpoint == "cdn"]


# --- Copies that succeed -----------------------------------------------------------------------------------------


def test_multipart_copy_is_byte_exact_and_records_what_it_verified(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]
    progress: list[tuple[int, int]] = []

    result = copy_file(
        entry,
        hub=HubClient(hub.url),
        repo_id=REPO,
        commit=commit,
        bucket=BUCKET,
        s3_client=s3,
        options=OPTIONS,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    assert stored(s3, entry.key) == FILES["model.safetensors"]
    assert (result.parts, result.part_size, result.skipped) == (5, MiB, False)
    assert result.sha256 == entry.sha256 == hashlib.sha256(FILES["model.safetensors"]).hexdigest()
    assert s3.head_object(Bucket=BUCKET, Key=entry.key)["Metadata"] == {
        META_SHA256: entry.sha256,
        META_SOURCE_COMMIT: commit,
        META_SOURCE_REPO: REPO,
    }
    assert len(progress) == 5
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert progress[-1] == (entry.size, entry.size)


def test_small_lfs_file_takes_one_put_that_s3_checks_against_the_hub_sha256(hub, commit, s3, entries) -> None:
    entry = entries["small.safetensors"]
    sent: list[dict[str, Any]] = []
    s3.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **_: sent.append(dict(params)))

    result = copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == FILES["small.safetensors"]
    assert result.parts == 1
    assert sent[0]["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(str(entry.sha256))).decode()


def test_plain_git_file_is_checked_by_its_blob_sha1(hub, commit, s3, entries) -> None:
    entry = entries["config.json"]
    assert entry.sha256 is None

    copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == FILES["config.json"]
    assert s3.head_object(Bucket=BUCKET, Key=entry.key)["Metadata"][META_BLOB_SHA1] == entry.blob_id

    wrong = entry.model_copy(update={"blob_id": "0" * 40, "key": "models/other.json"})
    with pytest.raises(ChecksumMismatch, match="git blob sha1"):
        copy(hub, commit, s3, wrong)
    assert_nothing_stored(s3, wrong.key)


def test_an_empty_file_is_copied_and_verified(hub, commit, s3, entries) -> None:
    entry = entries["empty.txt"]

    result = copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == b""
    assert result.sha256 == hashlib.sha256(b"").hexdigest()


def test_a_second_run_reads_nothing_from_the_hub(hub, commit, s3, entries) -> None:
    for entry in entries.values():
        copy(hub, commit, s3, entry)
    settle(hub)
    hub.clear_requests()

    again = {path: copy(hub, commit, s3, entry) for path, entry in entries.items()}

    assert hub.requests == []
    assert all(result.skipped and result.bytes_copied == 0 for result in again.values())
    assert again["model.safetensors"].sha256 == entries["model.safetensors"].sha256


def test_an_object_that_is_not_the_planned_file_is_copied_over(hub, commit, s3, entries) -> None:
    entry = entries["small.safetensors"]
    s3.put_object(Bucket=BUCKET, Key=entry.key, Body=b"stale", Metadata={META_SHA256: str(entry.sha256)})

    result = copy(hub, commit, s3, entry)

    assert not result.skipped
    assert stored(s3, entry.key) == FILES["small.safetensors"]


def test_memory_is_bounded_by_parts_in_flight_times_part_size(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]

    result = copy(hub, commit, s3, entry, parts_in_flight=2)

    assert result.parts == 5
    assert MiB < result.peak_buffered_bytes <= 2 * MiB  # parts overlapped, never more than two at once


def test_a_part_is_uploaded_as_soon_as_it_is_read_not_after_the_parts_before_it(
    hub, commit, s3, entries, monkeypatch
) -> None:
    """The hash goes in file order, the uploads do not wait for it: a slow first range holds one buffer, not the
    whole pipeline."""
    entry = entries["model.safetensors"]
    later_part_uploaded = threading.Event()
    read_into = HubFileReader.read_into

    def first_part_read_last(self: HubFileReader, buffer: memoryview, start: int) -> None:
        if start == 0:
            assert later_part_uploaded.wait(timeout=30), "no later part was uploaded while the first was being read"
        read_into(self, buffer, start)

    class RecordingParts:
        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

        def upload_part(self, **params: Any) -> Any:
            answer = s3.upload_part(**params)
            if params["PartNumber"] > 1:
                later_part_uploaded.set()
            return answer

    monkeypatch.setattr(HubFileReader, "read_into", first_part_read_last)

    result = copy(hub, commit, RecordingParts(), entry)

    assert result.parts == 5
    assert stored(s3, entry.key) == FILES["model.safetensors"]  # and hashed in order: the digest was checked


@pytest.mark.parametrize(
    ("size", "part_size"),
    [(0, 8 * MiB), (100 * MiB, 8 * MiB), (40 * 10**9, 8 * MiB), (200 * 10**9, 20 * MiB), (5 * 1024**4, 525 * MiB)],
)
def test_part_size_keeps_every_file_within_ten_thousand_parts(size: int, part_size: int) -> None:
    assert part_size_for(size, TransferOptions()) == part_size
    assert -(-size // part_size) <= 10_000


@pytest.mark.parametrize("size", [50 * 10**9 + 1, 60 * 10**9, 150 * 10**9, 400 * 10**9])
def test_files_over_50_gb_fit_s3s_part_limits(size: int) -> None:
    part_size = part_size_for(size, TransferOptions())
    assert -(-size // part_size) <= 10_000
    assert 5 * MiB <= part_size <= 5 * 1024 * MiB


def test_a_file_that_would_need_parts_over_5_gib_is_refused_before_any_read() -> None:
    with pytest.raises(InvalidRequest, match="at most 5368709120 bytes"):
        part_size_for(10_000 * 5 * 1024 * MiB + 1, TransferOptions())


# --- What the Hub does wrong -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["model.safetensors", "small.safetensors"])
def test_a_wrong_byte_that_a_second_read_does_not_repeat_is_not_a_failure(hub, commit, s3, entries, path) -> None:
    entry = entries[path]
    hub.faults.add("corrupt", on=("cdn",), offset=1000)

    result = copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == FILES[path]
    assert result.sha256 == entry.sha256
    first_bytes = [r for r in hub.requests if r.endpoint == "cdn" and (r.range or "").startswith("bytes=0-")]
    assert len(first_bytes) == 2  # the file was read twice
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


@pytest.mark.parametrize("path", ["model.safetensors", "small.safetensors"])
def test_a_wrong_byte_in_every_read_fails_naming_the_file_and_stores_nothing(hub, commit, s3, entries, path) -> None:
    entry = entries[path]
    hub.faults.add("corrupt", on=("cdn",), path_glob=path, offset=1000, times=None)

    with pytest.raises(ChecksumMismatch, match=f"same mismatch in 3 reads of {path}"):
        copy(hub, commit, s3, entry)

    assert_nothing_stored(s3, entry.key)
    first_bytes = [r for r in hub.requests if r.endpoint == "cdn" and (r.range or "").startswith("bytes=0-")]
    assert len(first_bytes) == 3  # the first read and two re-reads


def test_a_rate_limit_storm_waits_for_the_hubs_reset_then_copies(hub, commit, s3, entries, monkeypatch) -> None:
    pauses = record_hub_pauses(monkeypatch)
    entry = entries["model.safetensors"]
    hub.faults.add("rate_limit", on=("resolve",), times=2, reset_seconds=3)
    hub.faults.add("rate_limit", on=("cdn",), times=4, reset_seconds=1)

    copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == FILES["model.safetensors"]
    assert sum(1 for r in hub.requests if r.status == 429) == 6
    assert max(pauses) == pytest.approx(3, abs=0.1)  # the RateLimit header's t=, not a guess


def test_a_rate_limit_beyond_the_wait_budget_is_left_to_the_state_machine(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]
    hub.faults.add("rate_limit", on=("cdn",), times=None, reset_seconds=300)

    with pytest.raises(HubRateLimited, match="429"):
        copy(hub, commit, s3, entry, wait_budget_seconds=60)

    assert_nothing_stored(s3, entry.key)


def test_a_truncated_body_is_resumed_from_the_exact_byte_where_it_stopped(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]
    hub.faults.add("truncate", on=("cdn",), after_bytes=300_000)

    copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == FILES["model.safetensors"]
    (broken,) = [(rng, sent) for rng, _, sent in cdn_ranges(hub) if sent == 300_000]
    first, last = broken[0].removeprefix("bytes=").split("-")
    assert (f"bytes={int(first) + 300_000}-{last}", 206, MiB - 300_000) in cdn_ranges(hub)


def test_a_connection_reset_mid_part_is_resumed_after_the_bytes_received(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]
    hub.faults.add("reset_after", on=("cdn",), after_bytes=500_000)

    copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == FILES["model.safetensors"]
    ranges = [rng for rng, _, _ in cdn_ranges(hub)]
    assert len(ranges) == 6  # five parts and one resumed read
    resumed = [rng for rng in ranges if int(rng.removeprefix("bytes=").split("-")[0]) % MiB]
    assert len(resumed) == 1  # started inside a part: after the bytes that did arrive, not from the part's start


def test_server_errors_are_retried_then_reported_as_unavailable(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]
    hub.faults.add("server_error", on=("cdn",), times=2, status=503)
    copy(hub, commit, s3, entry)
    assert stored(s3, entry.key) == FILES["model.safetensors"]

    s3.delete_object(Bucket=BUCKET, Key=entry.key)
    hub.faults.add("server_error", on=("cdn",), times=None)
    with pytest.raises(HubUnavailable, match="HTTP 500"):
        copy(hub, commit, s3, entry, retries=2)
    assert_nothing_stored(s3, entry.key)


def test_a_range_request_answered_with_200_is_detected(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]
    hub.faults.add("ignore_range", on=("cdn",), times=3)

    copy(hub, commit, s3, entry)

    # the whole-file 200s are used only by the read starting at byte 0; the others are read again as ranges
    assert stored(s3, entry.key) == FILES["model.safetensors"]
    assert sum(1 for _, status, _ in cdn_ranges(hub) if status == 200) == 3

    s3.delete_object(Bucket=BUCKET, Key=entry.key)
    hub.faults.add("ignore_range", on=("cdn",), times=None)
    with pytest.raises(TransferInterrupted, match="ignored Range"):
        copy(hub, commit, s3, entry, retries=1)
    assert_nothing_stored(s3, entry.key)


def test_a_file_the_hub_now_publishes_differently_is_not_copied(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"].model_copy(update={"sha256": "f" * 64})

    with pytest.raises(SourceChanged, match="sha256"):
        copy(hub, commit, s3, entry)

    assert cdn_ranges(hub) == []
    assert_nothing_stored(s3, entry.key)


def test_a_gated_repo_needs_the_token_which_never_leaves_for_the_cdn(hub, s3, entries) -> None:
    gated_commit = hub.add_repo("org/gated-model", FILES, gated=True, token="hf_secret")
    entry = entries["model.safetensors"]

    def copy_gated(token: str | None) -> CopyResult:
        client = HubClient(hub.url, token)
        return copy_file(
            entry,
            hub=client,
            repo_id="org/gated-model",
            commit=gated_commit,
            bucket=BUCKET,
            s3_client=s3,
            options=OPTIONS,
        )

    with pytest.raises(HubAccessDenied, match="gated"):
        copy_gated(None)
    assert_nothing_stored(s3, entry.key)

    copy_gated("hf_secret")

    assert stored(s3, entry.key) == FILES["model.safetensors"]
    served = [(r.endpoint, r.has_auth) for r in hub.requests if r.status in (206, 302)]
    assert ("resolve", True) in served
    assert ("cdn", True) not in served
    assert ("cdn", False) in served


@pytest.mark.parametrize("status", [403, 410])
def test_a_cdn_url_that_expires_is_resolved_again(hub, commit, s3, entries, status) -> None:
    entry = entries["model.safetensors"]
    hub.faults.add("expired_url", on=("cdn",), status=status)

    copy(hub, commit, s3, entry)

    assert stored(s3, entry.key) == FILES["model.safetensors"]
    assert [r.method for r in hub.requests if r.endpoint == "resolve"] == ["HEAD", "HEAD"]


def test_one_resolve_serves_every_range_worker_and_every_read_is_ranged(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]

    copy(hub, commit, s3, entry)

    assert [r.method for r in hub.requests if r.endpoint == "resolve"] == ["HEAD"]
    reads = [r for r in hub.requests if r.endpoint == "cdn"]
    assert len(reads) == 5  # one per part, all on the one CDN URL
    assert all(r.range is not None and r.status == 206 for r in reads)
    assert not any(r.has_auth for r in reads)  # the token stays with the Hub


@pytest.fixture(scope="module")
def xet_hub() -> Iterator[tuple[LocalHub, str]]:
    """A Hub whose LFS files are Xet-backed, and whose bridge answers 400 to an unranged GET of a file above 1 MiB."""
    with LocalHub(xet=True, unranged_get_limit_bytes=MiB) as local_hub:
        yield local_hub, local_hub.add_repo(REPO, FILES)


def test_a_xet_backed_file_is_copied_by_ranged_reads_and_verified_by_sha256(xet_hub, s3) -> None:
    local_hub, commit = xet_hub
    (listed,) = [f for f in HubClient(local_hub.url).list_files(REPO, commit) if f.path == "model.safetensors"]
    entry = ManifestEntry(
        path=listed.path, size=listed.size, sha256=listed.sha256, blob_id=listed.blob_id, key="models/xet"
    )
    plain = httpx.get(f"{local_hub.url}/{REPO}/resolve/{commit}/model.safetensors", follow_redirects=True)
    assert plain.status_code == 400  # the bridge refuses an unranged GET of a large file
    resolved = httpx.head(f"{local_hub.url}/{REPO}/resolve/{commit}/model.safetensors")
    assert resolved.headers["x-xet-hash"]
    local_hub.clear_requests()

    result = copy(local_hub, commit, s3, entry)

    assert stored(s3, "models/xet") == FILES["model.safetensors"]
    assert result.sha256 == listed.sha256
    reads = [r for r in local_hub.requests if r.endpoint == "cdn"]
    assert reads
    assert all(r.range is not None and r.status == 206 for r in reads)


# --- What S3 does wrong ---------------------------------------------------------------------------------------------


def test_s3_slowdown_on_a_part_is_retried_by_botocore_and_not_swallowed(hub, commit, s3, entries, monkeypatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda *_: 0)  # botocore's backoff, not slept here
    entry = entries["model.safetensors"]
    slowdowns = fail_upload_parts(s3, times=2)

    copy(hub, commit, s3, entry)

    assert slowdowns == [503, 503]
    assert stored(s3, entry.key) == FILES["model.safetensors"]

    s3.delete_object(Bucket=BUCKET, Key=entry.key)
    fail_upload_parts(s3, times=100)
    with pytest.raises(TransferInterrupted, match="SlowDown"):
        copy(hub, commit, s3, entry)
    assert_nothing_stored(s3, entry.key)


def test_s3_access_denied_is_reported_by_name_and_the_upload_aborted(hub, commit, s3, entries) -> None:
    entry = entries["model.safetensors"]

    class DeniedParts:
        """The real client, except that UploadPart is refused as a bucket policy would."""

        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

        def upload_part(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "UploadPart")

    with pytest.raises(StorageAccessDenied, match="AccessDenied"):
        copy(hub, commit, DeniedParts(), entry)

    assert_nothing_stored(s3, entry.key)


# --- helpers -------------------------------------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def fail_upload_parts(s3: Any, times: int) -> list[int]:
    """Answer the next `times` UploadPart calls with 503 SlowDown before they reach moto, as a busy S3 prefix does."""
    answered: list[int] = []
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"

    def slow_down(request: Any, **_: Any) -> AWSResponse | None:
        if len(answered) >= times:
            return None
        answered.append(503)
        return AWSResponse(request.url, 503, {}, _Raw(body))

    s3.meta.events.register_first("before-send.s3.UploadPart", slow_down)
    return answered
