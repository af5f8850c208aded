from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, tracer
from modelferry.adapters.settings import NotifySettings, load_settings
from modelferry.contract import CopyFailure, NotifyEvent, Stage, WorkflowState
from modelferry.stages.notify import copy_failures, failure_notification, publish, success_notification


def _copy_failures(state: WorkflowState) -> list[CopyFailure]:
    """The failed files' own errors, when the copy stage failed (its Map reports only a count)."""
    if state.failed_stage is not Stage.COPY or state.run is None:
        return []
    return copy_failures(client("s3"), state.run.bucket, state.run.layout)


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = NotifyEvent.model_validate(event)
    settings = load_settings(NotifySettings)
    if parsed.outcome == "succeeded":
        notification = success_notification(parsed.state, settings)
    else:
        notification = failure_notification(parsed.state, _copy_failures(parsed.state))
    sent = publish(notification, settings, sns=client("sns"), events=client("events"))
    logger.info("notified", extra={"outcome": notification.outcome, **sent.model_dump()})
    return sent.model_dump(mode="json")
