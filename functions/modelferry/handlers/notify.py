from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from modelferry.aws import client
from modelferry.copy_stage import list_failures
from modelferry.notifications import failure_notification, publish, success_notification
from modelferry.observability import logger, tracer
from modelferry.settings import NotifySettings, load_settings


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
