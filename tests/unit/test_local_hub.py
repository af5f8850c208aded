"""LocalHub must be indistinguishable from the Hub for huggingface_hub 1.33 and httpx, faults included.

Every server runs on 127.0.0.1 and is stopped (threads joined) by the end of its test.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder
from huggingface_hub.utils import hf_raise_for_status, parse_ratelimit_headers

from modelferry_cli.local.hub import DEMO_REPO_ID, LocalHub, git_blob_sha1
from modelferry_cli.local.model_factory import gpt_oss_repo, write_repo

REPO = "openai-tiny/gpt-oss-test"
SHARD = "model-00000-of-00002.safetensors"
FILES = gpt_oss_repo()
TOKEN = "hf_localtesttoken"
TOTAL_PARAMETERS = json.loads(FILES["model.safetensors.index.json"])["metadata"]["total_parameters"]


@pytest.fixture(autouse=True)
def _offline_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token from the environment or disk, no Xet, no progress bars: only what each test passes."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)


def _server_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "LocalHub" or "process_request_thread" in t.name}


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as running:
        running.add_repo(REPO, FILES)
        yield running
    assert not _server_threads(), "LocalHub.stop() left threads behind"


def _api(hub: LocalHub, token: str | bool = False) -> HfApi:
    return HfApi(endpoint=hub.url, token=token)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(hub: LocalHub, tmp_path: Path, filename: str, *, repo_id: str = REPO, **kwargs: Any) -> bytes:
    options: dict[str, Any] = {"endpoint": hub.url, "token": False, "cache_dir": tmp_path / "cache"} | kwargs
    return Path(hf_hub_download(repo_id, filename, **options)).read_bytes()


def _url(hub: LocalHub, filename: str, revision: str = "main", repo_id: str = REPO) -> str:
    return hf_hub_url(repo_id, filename, revision=revision, endpoint=hub.url)


# --------------------------------------------------------------------------------------------------------------------
# Metadata through huggingface_hub


def test_model_info_reports_sizes_blob_ids_and_lfs_sha256(hub: LocalHub) -> None:
    info = _api(hub).model_info(REPO, files_metadata=True)

    siblings = {sibling.rfilename: sibling for sibling in info.siblings or []}
    assert set(siblings) == set(FILES)
    assert info.private is False
    assert info.gated is False
    assert info.config == {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss"}
    for name, data in FILES.items():
        assert siblings[name].size == len(data)
        lfs = siblings[name].lfs
        if name.endswith((".safetensors", ".bin")):
            assert lfs is not None
            assert (lfs.sha256, lfs.size) == (_sha256(data), len(data))
        else:
            assert lfs is None
            assert siblings[name].blob_id == git_blob_sha1(data)
    assert info.safetensors is not None
    assert info.safetensors.parameters == {"BF16": TOTAL_PARAMETERS}


def test_list_repo_tree_recursive_expanded_and_paginated(tmp_path: Path) -> None:
    with LocalHub(tree_page_size=4) as hub:
        commit = hub.add_repo(REPO, FILES)
        entries = list(_api(hub).list_repo_tree(REPO, recursive=True, expand=True))
        tree_pages = [r for r in hub.requests if "/tree/" in r.path]
        top_level = list(_api(hub).list_repo_tree(REPO, path_in_repo="original"))

    files = {entry.path: entry for entry in entries if isinstance(entry, RepoFile)}
    folders = {entry.path for entry in entries if isinstance(entry, RepoFolder)}
    assert set(files) == set(FILES)
    assert folders == {"metal", "original"}
    assert len(tree_pages) == 5  # 17 entries, 4 per page, followed through the Link header
    shard = files[SHARD]
    assert (shard.size, shard.lfs.sha256 if shard.lfs else None) == (len(FILES[SHARD]), _sha256(FILES[SHARD]))
    assert shard.last_commit is not None
    assert shard.last_commit.oid == commit
    assert shard.security is not None
    assert shard.security.safe
    assert files["config.json"].blob_id == git_blob_sha1(FILES["config.json"])
    assert sorted(entry.path for entry in top_level) == ["original/config.json", "original/model.safetensors"]


def test_get_paths_info_returns_files_and_folders_and_skips_missing(hub: LocalHub) -> None:
    infos = _api(hub).get_paths_info(REPO, ["config.json", "metal", SHARD, "missing.txt"], expand=True)

    assert [info.path for info in infos] == ["config.json", "metal", SHARD]
    config, metal, shard = infos
    assert isinstance(config, RepoFile)
    assert config.size == len(FILES["config.json"])
    assert isinstance(metal, RepoFolder)
    assert isinstance(shard, RepoFile)
    assert shard.lfs is not None
    assert shard.lfs.sha256 == _sha256(FILES[SHARD])


# --------------------------------------------------------------------------------------------------------------------
# Downloads


def test_hf_hub_download_and_snapshot_download_return_the_served_bytes(hub: LocalHub, tmp_path: Path) -> None:
    assert _download(hub, tmp_path, SHARD) == FILES[SHARD]
    assert _download(hub, tmp_path, "original/config.json") == FILES["original/config.json"]

    folder = Path(snapshot_download(REPO, endpoint=hub.url, token=False, cache_dir=tmp_path / "snapshot"))

    assert {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == FILES
    cdn = [r for r in hub.requests if r.endpoint == "cdn"]
    assert cdn
    assert all(r.host == "localhost" for r in cdn)


def test_resolve_headers_match_the_hub(hub: LocalHub) -> None:
    commit = _api(hub).model_info(REPO).sha
    with httpx.Client() as client:
        lfs = client.head(_url(hub, SHARD))
        plain = client.head(_url(hub, "config.json"))

    assert lfs.status_code == 302
    assert urlsplit(lfs.headers["Location"]).hostname == "localhost"  # the "CDN" is another host, as on the Hub
    assert lfs.headers["X-Linked-Etag"] == f'"{_sha256(FILES[SHARD])}"'
    assert lfs.headers["X-Linked-Size"] == str(len(FILES[SHARD]))
    assert lfs.headers["X-Repo-Commit"] == commit
    assert "ETag" in lfs.headers
    assert plain.status_code == 200
    assert plain.headers["ETag"] == f'"{git_blob_sha1(FILES["config.json"])}"'
    assert plain.headers["Content-Length"] == str(len(FILES["config.json"]))
    assert plain.headers["X-Repo-Commit"] == commit


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=100-199", 100, 200), ("bytes=1000-", 1000, None), ("bytes=-50", -50, None), ("bytes=0-99999999", 0, None)],
)
def test_ranged_get_through_the_redirect(hub: LocalHub, range_header: str, start: int, end: int | None) -> None:
    data = FILES[SHARD]
    with httpx.Client(follow_redirects=True) as client:
        response = client.get(_url(hub, SHARD), headers={"Range": range_header})

    assert response.status_code == 206
    assert response.content == data[start:end]
    first = start % len(data)
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(response.content) - 1}/{len(data)}"
    assert response.headers["Accept-Ranges"] == "bytes"


def test_ranged_get_of_a_plain_file_and_past_the_end(hub: LocalHub) -> None:
    size = len(FILES[SHARD])
    with httpx.Client(follow_redirects=True) as client:
        plain = client.get(_url(hub, "config.json"), headers={"Range": "bytes=2-9"})
        past_end = client.get(_url(hub, SHARD), headers={"Range": f"bytes={size}-"})

    assert (plain.status_code, plain.content) == (206, FILES["config.json"][2:10])
    assert past_end.status_code == 416
    assert past_end.headers["Content-Range"] == f"bytes */{size}"


def test_new_commit_moves_the_branch_and_old_commit_stays_served(hub: LocalHub, tmp_path: Path) -> None:
    first = _api(hub).model_info(REPO).sha
    changed = dict(FILES) | {"config.json": b'{"model_type": "gpt_oss", "changed": true}\n'}

    second = hub.add_repo(REPO, changed)

    assert second != first
    assert len(second) == 40
    assert _api(hub).model_info(REPO).sha == second
    assert _download(hub, tmp_path, "config.json", revision=first) == FILES["config.json"]
    assert _download(hub, tmp_path, "config.json") == changed["config.json"]
    entries = {e.path: e for e in _api(hub).list_repo_tree(REPO, revision=second, expand=True)}
    assert entries["config.json"].last_commit.oid == second  # type: ignore[union-attr]
    assert entries[SHARD].last_commit.oid == first  # type: ignore[union-attr]


def test_folder_source_is_streamed_and_hashed_like_bytes(tmp_path: Path) -> None:
    folder = write_repo(FILES, tmp_path / "repo")
    big = os.urandom(10 * 1024 * 1024 + 1)  # over 10 MiB: LFS whatever its name
    (folder / "big.txt").write_bytes(big)
    (folder / "junk.safetensors").write_bytes(b"\xff" * 64)  # benchmarks serve random bytes under such names
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    with LocalHub() as hub:
        from_disk = hub.add_repo("org/disk", folder)
        from_memory = hub.add_repo("org/memory", {**FILES, "big.txt": big, "junk.safetensors": b"\xff" * 64})
        info = _api(hub).model_info("org/disk", files_metadata=True)
        with httpx.Client(follow_redirects=True) as client:
            tail = client.get(_url(hub, "big.txt", repo_id="org/disk"), headers={"Range": "bytes=-4096"})
        assert _download(hub, tmp_path, SHARD, repo_id="org/disk") == FILES[SHARD]

    assert from_disk == from_memory  # same content, same first-commit time: same git ids
    siblings = {sibling.rfilename: sibling for sibling in info.siblings or []}
    assert ".git/HEAD" not in siblings
    assert siblings["big.txt"].lfs is not None
    assert siblings["big.txt"].lfs.sha256 == _sha256(big)
    assert tail.content == big[-4096:]
    assert info.safetensors is not None
    assert info.safetensors.parameters == {"BF16": TOTAL_PARAMETERS}  # junk.safetensors skipped, not fatal


def test_bandwidth_cap_throttles_each_stream() -> None:
    with LocalHub(bandwidth_bytes_per_s=1_000_000) as hub:
        hub.add_repo(REPO, FILES)
        with httpx.Client(follow_redirects=True) as client:
            began = time.monotonic()
            body = client.get(_url(hub, SHARD)).content
            elapsed = time.monotonic() - began

    assert body == FILES[SHARD]
    assert len(body) / 1_000_000 * 0.9 <= elapsed < 3


# --------------------------------------------------------------------------------------------------------------------
# Errors, as huggingface_hub maps them


def test_unknown_repo_revision_and_file_map_to_huggingface_hub_errors(hub: LocalHub, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError) as unknown:
        _api(hub).model_info("nobody/nothing")
    assert unknown.value.response.status_code == 401
    assert not isinstance(unknown.value, GatedRepoError)
    with pytest.raises(RepositoryNotFoundError):
        _download(hub, tmp_path, "config.json", repo_id="nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        _api(hub).model_info(REPO, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        _download(hub, tmp_path, "config.json", revision="0" * 40)
    with pytest.raises(EntryNotFoundError):
        _download(hub, tmp_path, "missing.json")
    with pytest.raises(EntryNotFoundError):
        list(_api(hub).list_repo_tree(REPO, path_in_repo="no-such-folder"))


def test_private_repo_needs_its_token(hub: LocalHub, tmp_path: Path) -> None:
    hub.add_repo("org/private", FILES, private=True, token=TOKEN)

    for token in (False, "hf_wrong"):
        with pytest.raises(RepositoryNotFoundError) as refused:
            _api(hub, token).model_info("org/private")
        assert refused.value.response.status_code == (401 if token is False else 404)
    assert _api(hub, TOKEN).model_info("org/private").private is True
    assert _download(hub, tmp_path, SHARD, repo_id="org/private", token=TOKEN) == FILES[SHARD]


def test_gated_repo_shows_metadata_but_not_files_without_access(hub: LocalHub, tmp_path: Path) -> None:
    hub.add_repo("org/gated", FILES, gated=True, token=TOKEN)
    assert _api(hub).model_info("org/gated").gated == "manual"

    with pytest.raises(GatedRepoError) as anonymous:
        _download(hub, tmp_path, "config.json", repo_id="org/gated")
    with pytest.raises(GatedRepoError) as wrong_token:
        _download(hub, tmp_path, "config.json", repo_id="org/gated", token="hf_wrong")
    with pytest.raises(GatedRepoError):
        _api(hub).auth_check("org/gated")
    assert (anonymous.value.response.status_code, wrong_token.value.response.status_code) == (401, 403)

    _api(hub, TOKEN).auth_check("org/gated")
    hub.clear_requests()
    assert _download(hub, tmp_path, SHARD, repo_id="org/gated", token=TOKEN) == FILES[SHARD]
    assert [(r.endpoint, r.has_auth) for r in hub.requests] == [("resolve", True), ("cdn", False)]


# --------------------------------------------------------------------------------------------------------------------
# Faults


def test_rate_limit_fault_sends_the_hubs_headers_once(hub: LocalHub) -> None:
    fault = hub.faults.add("rate_limit", reset_seconds=7)
    with httpx.Client() as client:
        limited = client.get(_url(hub, "config.json"))
        after = client.get(_url(hub, "config.json"))

    assert limited.status_code == 429
    assert limited.headers["RateLimit-Policy"] == '"fixed window";"resolvers";q=3000;w=300'
    assert limited.headers["Retry-After"] == "7"
    info = parse_ratelimit_headers(limited.headers)
    assert info is not None
    assert (info.resource_type, info.remaining, info.reset_in_seconds, info.limit) == ("resolvers", 0, 7, 3000)
    with pytest.raises(HfHubHTTPError, match="rate limit"):
        hf_raise_for_status(limited)
    assert after.status_code == 200
    assert fault.hits == 1


def test_server_error_fault_counts_down(hub: LocalHub) -> None:
    hub.faults.add("server_error", status=503, times=2, on=("api",))
    with httpx.Client() as client:
        statuses = [client.get(f"{hub.url}/api/models/{REPO}").status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


def test_reset_after_fault_resets_the_connection_mid_body(hub: LocalHub) -> None:
    hub.faults.add("reset_after", after_bytes=1000, path_glob="*.safetensors")
    received = bytearray()

    def read_body() -> None:
        with httpx.Client(follow_redirects=True) as client, client.stream("GET", _url(hub, SHARD)) as response:
            for chunk in response.iter_raw():
                received.extend(chunk)

    with pytest.raises(httpx.ReadError):  # a reset, not the orderly end of stream a truncation gives
        read_body()

    assert bytes(received) == FILES[SHARD][:1000]
    assert hub.requests[-1].body_bytes == 1000


def test_truncate_fault_sends_fewer_bytes_than_announced(hub: LocalHub) -> None:
    hub.faults.add("truncate", after_bytes=5000)
    with pytest.raises(httpx.RemoteProtocolError), httpx.Client(follow_redirects=True) as client:
        client.get(_url(hub, SHARD))

    assert (hub.requests[-1].endpoint, hub.requests[-1].body_bytes) == ("cdn", 5000)


def test_huggingface_hub_recovers_from_a_truncated_body(
    hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("huggingface_hub.file_download.time.sleep", lambda _: None)
    hub.faults.add("truncate", after_bytes=5000, on=("cdn",))

    assert _download(hub, tmp_path, SHARD) == FILES[SHARD]
    assert [(r.method, r.endpoint, r.body_bytes) for r in hub.requests[-3:]] == [
        ("HEAD", "resolve", 0),  # a HEAD has no body: it never consumes a body fault
        ("GET", "cdn", 5000),
        ("GET", "cdn", len(FILES[SHARD])),
    ]


def test_corrupt_fault_flips_one_byte(hub: LocalHub) -> None:
    hub.faults.add("corrupt", offset=7, path_glob="original/*")
    with httpx.Client(follow_redirects=True) as client:
        untouched = client.get(_url(hub, SHARD)).content
        corrupted = client.get(_url(hub, "original/model.safetensors")).content

    original = FILES["original/model.safetensors"]
    assert untouched == FILES[SHARD]
    assert len(corrupted) == len(original)
    assert [i for i, (a, b) in enumerate(zip(corrupted, original, strict=True)) if a != b] == [7]
    assert corrupted[7] == original[7] ^ 0xFF


def test_ignore_range_fault_answers_200_with_the_whole_file(hub: LocalHub) -> None:
    hub.faults.add("ignore_range")
    with httpx.Client(follow_redirects=True) as client:
        ignored = client.get(_url(hub, SHARD), headers={"Range": "bytes=10-19"})
        honoured = client.get(_url(hub, SHARD), headers={"Range": "bytes=10-19"})

    assert (ignored.status_code, ignored.content) == (200, FILES[SHARD])
    assert (honoured.status_code, honoured.content) == (206, FILES[SHARD][10:20])


def test_forbidden_gated_fault_raises_gated_repo_error(hub: LocalHub, tmp_path: Path) -> None:
    hub.faults.add("forbidden_gated", path_glob="*.json", times=None)

    with pytest.raises(GatedRepoError):
        _download(hub, tmp_path, "config.json")
    assert _download(hub, tmp_path, SHARD) == FILES[SHARD]
    hub.faults.clear()
    assert _download(hub, tmp_path, "config.json") == FILES["config.json"]


def test_unknown_fault_parameters_are_refused(hub: LocalHub) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        hub.faults.add("explode")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="after_bytes"):
        hub.faults.add("truncate", offset=3)


# --------------------------------------------------------------------------------------------------------------------
# Lifecycle and command line


def test_stop_closes_idle_keep_alive_connections_and_the_socket() -> None:
    hub = LocalHub().start()
    hub.add_repo(REPO, FILES)
    url = _url(hub, "config.json")
    with httpx.Client() as client:
        assert client.get(url).status_code == 200  # the connection stays open in the pool
        began = time.monotonic()
        hub.stop()
        assert time.monotonic() - began < 2
        with pytest.raises(httpx.TransportError):
            client.get(url)
    assert not _server_threads()


def test_command_line_serves_the_demo_repo_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "modelferry_cli.local.hub", "--port", "0", "--demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        info = httpx.get(f"{announced['url']}/api/models/{DEMO_REPO_ID}").json()
        assert info["sha"] == announced["repos"][DEMO_REPO_ID]
        assert {sibling["rfilename"] for sibling in info["siblings"]} == set(FILES)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
