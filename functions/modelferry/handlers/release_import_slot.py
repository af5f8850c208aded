from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.observability import logger, tracer
from modelferry.contract import ReleaseSlotEvent
from modelferry.handlers._queue import dispatcher
from modelferry.stages.queue import release_slot


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ReleaseSlotEvent.model_validate(event)
    released = release_slot(parsed.execution_id, dispatcher())
    logger.info("import slot released", extra=released.model_dump(mode="json"))
    return released.model_dump(mode="json")
