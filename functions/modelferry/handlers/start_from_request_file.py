"""EventBridge "Object Created" for requests/*.json in the model bucket -> one execution per requested model."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AliasChoices, BaseModel, Field

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, metrics, tracer
from modelferry.adapters.settings import RequestFileSettings, load_settings
from modelferry.request_files import process_request_file


class _Bucket(BaseModel):
    name: str


class _Object(BaseModel):
    key: str
    # S3 sends "etag"; moto's S3 sends "eTag". (Powertools' S3EventNotificationEventBridgeModel requires "etag".)
    etag: str = Field(validation_alias=AliasChoices("etag", "eTag"))


class _Detail(BaseModel):
    bucket: _Bucket
    object: _Object


class ObjectCreatedEvent(BaseModel):
    id: str
    detail_type: str = Field(alias="detail-type")
    detail: _Detail


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ObjectCreatedEvent.model_validate(event)
    settings = load_settings(RequestFileSettings)
    bucket, key = parsed.detail.bucket.name, parsed.detail.object.key
    if bucket != settings.model_bucket:
        logger.warning("event for another bucket ignored", extra={"bucket": bucket, "key": key})
        metrics.add_metric(name="RequestFileEventsIgnored", unit=MetricUnit.Count, value=1)
        return {"status": "ignored", "reason": f"bucket {bucket} is not this stack's model bucket"}
    outcome = process_request_file(
        bucket,
        key,
        parsed.detail.object.etag,
        s3=client("s3"),
        sfn=client("stepfunctions"),
        state_machine_arn=settings.state_machine_arn,
    )
    logger.info("request file processed", extra=outcome.model_dump(mode="json"))
    if outcome.status == "started":
        metrics.add_metric(name="RequestFileExecutions", unit=MetricUnit.Count, value=len(outcome.executions))
    elif outcome.status == "rejected":
        metrics.add_metric(name="RequestFilesRejected", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="RequestFileEventsIgnored", unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")
