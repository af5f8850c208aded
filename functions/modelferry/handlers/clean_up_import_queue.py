from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from modelferry.adapters.observability import logger, tracer
from modelferry.handlers._queue import dispatcher
from modelferry.stages.queue import release_slot

# The execution statuses that end a run (Step Functions developer guide, "Step Functions events in EventBridge";
# the template's rule passes only these).
_ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionStatusDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    execution_arn: str = Field(alias="executionArn")
    status: str


class ExecutionStatusChange(BaseModel):
    """The parts of a "Step Functions Execution Status Change" event this function reads."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    detail_type: str = Field(alias="detail-type")
    detail: ExecutionStatusDetail


@logger.inject_lambda_context(correlation_id_path="detail.executionArn")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A run that ended while in line or holding the import slot leaves the line and gives the slot up (a run that
    ended otherwise finds nothing to give back)."""
    parsed = ExecutionStatusChange.model_validate(event)
    if parsed.detail.status not in _ENDED:
        logger.info("execution still running: nothing to clean up", extra={"status": parsed.detail.status})
        return {"released": False, "next_execution": None}
    released = release_slot(parsed.detail.execution_arn, dispatcher())
    logger.info("import queue cleaned up", extra={"status": parsed.detail.status, **released.model_dump(mode="json")})
    return released.model_dump(mode="json")
