"""What the three import-queue handlers share: the Region's line in the table, and Step Functions' callback API."""

from __future__ import annotations

from modelferry.adapters.aws import client
from modelferry.adapters.import_queue import ImportQueue, JoinableImportQueue
from modelferry.adapters.settings import ImportQueueSettings, load_settings
from modelferry.stages.queue import Dispatcher


def dispatcher() -> Dispatcher:
    """For the functions that hand the slot on (release, cleanup)."""
    settings = load_settings(ImportQueueSettings)
    dynamodb = client("dynamodb")
    # The line is per Region, as Bedrock's quota: the Region this function (and the import) runs in.
    region = dynamodb.meta.region_name
    return Dispatcher(queue=ImportQueue(dynamodb, settings.import_queue_table, region), sfn=client("stepfunctions"))


def joining_dispatcher() -> tuple[JoinableImportQueue, Dispatcher]:
    """For JoinImportQueue: the line it adds the run to, and the hand-over it runs next."""
    settings = load_settings(ImportQueueSettings)
    dynamodb = client("dynamodb")
    line = JoinableImportQueue(dynamodb, settings.import_queue_table, dynamodb.meta.region_name)
    return line, Dispatcher(queue=line, sfn=client("stepfunctions"))
