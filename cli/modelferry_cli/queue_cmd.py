"""`modelferry queue`: the line for the import slot in a Region (Bedrock runs one import job per Region).

Reads the stack's import-queue table (output ImportQueueTableName; DynamoDB GetItem and Query): who holds the slot
since when, and who waits behind it in the order they arrived. Nothing here writes.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TextIO

from modelferry.adapters.bedrock import as_utc
from modelferry.adapters.import_queue import ImportQueue
from modelferry.contract import QueuePlace
from modelferry.stages.queue import line
from modelferry_cli.aws_context import EXIT_OK, add_aws_arguments, one_line_aws_errors, session, stack_output
from modelferry_cli.watch_view import human_seconds

QUEUE_TABLE_OUTPUT = "ImportQueueTableName"


def import_queue(args: argparse.Namespace, region: str | None = None) -> ImportQueue:
    """The stack's import line for `region` (the session's Region when None)."""
    aws = session(args, region)
    table = getattr(args, "queue_table", None) or stack_output(args, aws.client("cloudformation"), QUEUE_TABLE_OUTPUT)
    dynamodb = aws.client("dynamodb")
    return ImportQueue(dynamodb, table, dynamodb.meta.region_name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON array, the holder first")
    parser.add_argument("--queue-table", metavar="NAME", help="use this table instead of the stack's")
    add_aws_arguments(parser)


def _waiting_for(place: QueuePlace, now: datetime) -> str:
    since = as_utc(place.queued_at)
    return human_seconds((now - since).total_seconds()) if since else "?"


@one_line_aws_errors
def run(args: argparse.Namespace, out: TextIO) -> int:
    queue = import_queue(args)
    places = line(queue)
    slot = queue.slot()
    if args.json:
        rows = [{**place.model_dump(mode="json"), "holder_since": slot.holder_since} for place in places]
        print(json.dumps(rows), file=out)
        return EXIT_OK
    if not places:
        print(f"nobody in line for the import slot in {queue.region}; the slot is free", file=out)
        return EXIT_OK
    now = datetime.now(UTC)
    print(f"Import line in {queue.region} (one import job per Region; first come, first served)", file=out)
    print(f"{'PLACE':<8}  {'MODEL':<28}  {'WAITING':>12}  EXECUTION", file=out)
    for place in places:
        where = "slot" if place.position == 0 else f"#{place.position}"
        waited = "holding" if place.position == 0 else _waiting_for(place, now)
        print(f"{where:<8}  {place.model_name[:28]:<28}  {waited:>12}  {place.execution_arn}", file=out)
    if slot.holder is None:
        print("the slot is free: the first in line is being told", file=out)
    return EXIT_OK
