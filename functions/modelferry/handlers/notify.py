from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, tracer
from modelferry.adapters.settings import NotifySettings, load_settings
from modelferry.stages.copy import list_failures
from modelferry.stages.notify import failure_notification, publish, success_notification


class NotifyEvent(BaseModel):
    outcome: Literal["succeeded", "failed"]
    execution_id: str
    state: dict[str, Any]


def _copy_failures(state: dict[str, Any]) -> list[dict[str, str]]:
    """The failed files' own errors, when the copy stage failed (its Map reports only a count)."""
    run = (state.get("plan") or {}).get("run") or {}
    if state.get("failed_stage") != "Copy files" or not run.get("run_prefix"):
        return []
    return list_failures(client("s3"), run["bucket"], run["run_prefix"])


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = NotifyEvent.model_validate(event)
    settings = load_settings(NotifySettings)
    if parsed.outcome == "succeeded":
        notification = success_notification(parsed.state, parsed.execution_id, settings)
    else:
        notification = failure_notification(parsed.state, parsed.execution_id, _copy_failures(parsed.state))
    sent = publish(notification, settings, sns=client("sns"), events=client("events"))
    logger.info("notified", extra={"outcome": notification.outcome, **sent})
    return sent
