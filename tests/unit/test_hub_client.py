"""The Hub client against the local Hub: the listing, small reads and header reads Plan and validation make go
through the task's request policy (429 waits, retries), one hop at a time; and a header that does not parse is read
again before it becomes a finding."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from modelferry.adapters.hub import HubClient
from modelferry.selection import Selection
from modelferry.validation.safetensors_header import SafetensorsHeader
from modelferry.validation.sources import HubRepoSource
from modelferry.validation.view import ModelView
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import safetensors_bytes
from tests.support.clocks import record_hub_pauses

REPO = "org/model"
SHARD = "model.safetensors"
FILES = {
    "config.json": json.dumps({"model_type": "llama"}).encode(),
    SHARD: safetensors_bytes({"w": ("U8", (4096,))}, seed=3),
    **{f"extra/file-{n}.txt": f"{n}\n".encode() for n in range(7)},
}


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_hub_pauses(monkeypatch)


@pytest.fixture
def hub() -> Iterator[tuple[LocalHub, str]]:
    with LocalHub(tree_page_size=3) as local_hub:
        yield local_hub, local_hub.add_repo(REPO, FILES)


def test_the_paginated_listing_waits_out_a_429_on_a_later_page(hub, pauses) -> None:
    local_hub, commit = hub
    local_hub.faults.add("rate_limit", path_glob="*/tree/*", on=("api",), times=None, one_in=2, reset_seconds=5)

    files = HubClient(local_hub.url).list_files(REPO, commit)

    assert [f.path for f in files] == sorted(FILES)
    pages = [r for r in local_hub.requests if "/tree/" in r.path]
    # 9 files and the `extra` folder, 3 entries a page: 4 pages, each answered 429 once, then 200
    assert sum(1 for r in pages if r.status == 429) == sum(1 for r in pages if r.status == 200) == 4
    assert pauses == [pytest.approx(5, abs=0.05)] * 4


def test_resolve_commit_waits_out_429s_and_retries_5xx(hub, pauses) -> None:
    local_hub, commit = hub
    local_hub.faults.add("rate_limit", on=("api",), times=1, reset_seconds=9)
    local_hub.faults.add("server_error", on=("api",), times=2, status=503)

    assert HubClient(local_hub.url).resolve_commit(REPO, "main") == commit
    assert pauses[0] == pytest.approx(9, abs=0.05)
    assert len(pauses) == 3  # the reset, then two back-offs


def test_a_429_from_the_cdn_repeats_the_cdn_read_not_the_resolve(hub, pauses) -> None:
    local_hub, commit = hub
    local_hub.faults.add("rate_limit", path_glob=SHARD, on=("cdn",), times=2, reset_seconds=1)

    data = HubClient(local_hub.url).read_range(REPO, commit, SHARD, 0, 8)

    assert data == FILES[SHARD][:8]
    assert [r.status for r in local_hub.requests if r.endpoint == "resolve"] == [302]
    assert [r.status for r in local_hub.requests if r.endpoint == "cdn"] == [429, 429, 206]


@pytest.mark.parametrize("status", [403, 410])
def test_a_small_read_whose_cdn_url_expired_resolves_again(hub, pauses, status) -> None:
    local_hub, commit = hub
    local_hub.faults.add("expired_url", path_glob=SHARD, on=("cdn",), status=status)

    assert HubClient(local_hub.url).read_range(REPO, commit, SHARD, 0, 8) == FILES[SHARD][:8]
    assert [r.status for r in local_hub.requests if r.endpoint == "resolve"] == [302, 302]


@pytest.mark.parametrize(("corrupted_reads", "parses"), [(1, True), (2, True), (3, False)])
def test_a_header_that_does_not_parse_is_read_again(hub, pauses, corrupted_reads, parses) -> None:
    local_hub, commit = hub
    # byte 7 of the 8-byte length: flipped, the header claims to be far larger than the file
    local_hub.faults.add("corrupt", path_glob=SHARD, on=("cdn",), times=corrupted_reads, offset=7)

    view = ModelView(HubRepoSource(HubClient(local_hub.url), REPO, commit), Selection())
    header = view.headers[SHARD]

    assert isinstance(header, SafetensorsHeader) == parses
    length_reads = [r for r in local_hub.requests if r.endpoint == "cdn" and r.range == "bytes=0-7"]
    assert len(length_reads) == min(corrupted_reads + 1, 3)
