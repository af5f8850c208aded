from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from modelferry.aws import client
from modelferry.notifications import failure_notification, publish, success_notification
from modelferry.observability import logger, tracer
from modelferry.settings import NotifySettings, load_settings


class NotifyEvent(BaseModel):
    outcome: Literal["succeeded", "failed"]
    execution_id: str
    state: dict[str, Any]


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = NotifyEvent.model_validate(event)
    settings = load_settings(NotifySettings)
    if parsed.outcome == "succeeded":
        notification = success_notification(parsed.state, parsed.execution_id, settings)
    else:
        notification = failure_notification(parsed.state, parsed.execution_id)
    sent = publish(notification, settings, sns=client("sns"), events=client("events"))
    logger.info("notified", extra={"outcome": notification.outcome, **sent})
    return sent
