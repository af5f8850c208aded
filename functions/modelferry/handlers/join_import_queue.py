from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.observability import logger, tracer
from modelferry.contract import JoinQueueEvent
from modelferry.handlers._queue import joining_dispatcher
from modelferry.stages.queue import join_queue


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Invoked by a `.waitForTaskToken` task: what this returns is not the task's result (SendTaskSuccess's output
    is), so it is only logged."""
    parsed = JoinQueueEvent.model_validate(event)
    line, dispatcher = joining_dispatcher()
    place = join_queue(parsed.run, parsed.execution_id, parsed.task_token, line, dispatcher)
    if place is None:
        logger.warning("the execution had ended: it was taken out of the line")
        return {}
    logger.info("in line for the import slot", extra=place.model_dump(mode="json"))
    return place.model_dump(mode="json")
