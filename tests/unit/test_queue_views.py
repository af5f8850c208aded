"""`modelferry queue` and the Queue row of `status`/`watch`, against an import line in moto's DynamoDB."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from modelferry.adapters.import_queue import JoinableImportQueue
from modelferry.contract import Stage
from modelferry.stages.queue import place_of
from modelferry_cli import queue_cmd
from modelferry_cli.local.rig import create_import_queue_table
from modelferry_cli.local.template import load_template
from modelferry_cli.progress import Snapshot, StageRow
from modelferry_cli.watch_view import MARKS, render_block

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TABLE = "line"
ARN = "arn:aws:states:us-east-1:123456789012:execution:modelferry:{}"


@pytest.fixture
def line(monkeypatch: pytest.MonkeyPatch) -> Iterator[JoinableImportQueue]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_import_queue_table(dynamodb, TABLE, load_template(ROOT / "template.yaml"))
        queue = JoinableImportQueue(dynamodb, TABLE, REGION)
        queued = datetime.now(UTC) - timedelta(minutes=30)
        for name in ("med-a", "med-b", "med-c"):
            queue.join(ARN.format(name), f"t-{name}", queued_at=queued.isoformat(), model_name=name, repo_id="r")
        queue.claim(ARN.format("med-a"), queued.isoformat())
        yield queue


def _args(*, as_json: bool = False) -> argparse.Namespace:
    return argparse.Namespace(queue_table=TABLE, region=REGION, profile=None, stack=None, json=as_json)


def test_the_queue_command_lists_the_holder_then_the_line_in_order(line: JoinableImportQueue) -> None:
    out = io.StringIO()
    assert queue_cmd.run(_args(), out) == 0
    rows = [row.split() for row in out.getvalue().splitlines() if row.startswith(("slot", "#"))]
    assert [(row[0], row[1]) for row in rows] == [("slot", "med-a"), ("#1", "med-b"), ("#2", "med-c")]
    assert rows[0][2] == "holding"
    assert rows[1][2:4] == ["30", "min"]


def test_the_queue_command_prints_json(line: JoinableImportQueue) -> None:
    out = io.StringIO()
    assert queue_cmd.run(_args(as_json=True), out) == 0
    rows = json.loads(out.getvalue())
    assert [(r["model_name"], r["position"]) for r in rows] == [("med-a", 0), ("med-b", 1), ("med-c", 2)]
    assert {r["holder"] for r in rows} == {ARN.format("med-a")}


def test_status_shows_the_place_in_line_and_the_run_holding_the_slot(line: JoinableImportQueue) -> None:
    now = datetime.now(UTC)
    stages = [StageRow(name) for name in ("Plan", "Copy", "Validate", "Queue", "Import", "Verify", "Notify")]
    for row in stages[:3]:
        row.state = "done"
    stages[3].state, stages[3].started = "running", now
    snap = Snapshot(
        execution_arn=ARN.format("med-c"),
        name="med-c",
        status="RUNNING",
        started=now,
        stopped=None,
        now=now,
        stages=stages,
        queue_place=place_of(line, ARN.format("med-c")),
    )
    block = "\n".join(render_block(snap))
    assert f"{MARKS['running']}  Queue" in block
    assert "2nd in line: 1 ahead in line, import slot held by med-a (med-a)" in block
    assert snap.row(Stage.QUEUE).state == "running"
    assert snap.to_json()["queue"]["position"] == 2
