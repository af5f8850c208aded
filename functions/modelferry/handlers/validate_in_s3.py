from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, metrics, tracer
from modelferry.contract import ValidateEvent
from modelferry.stages.validate import check_copied_model


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = ValidateEvent.model_validate(event)
    result = check_copied_model(parsed.run, parsed.manifest.manifest_key, s3=client("s3"))
    logger.info("validated in S3", extra=result.model_dump(mode="json"))
    metrics.add_metric(name="ValidationFixes", unit="Count", value=len(result.fixes))
    return result.model_dump(mode="json")
