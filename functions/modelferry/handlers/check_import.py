from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, metrics, tracer
from modelferry.adapters.settings import ImportSettings, load_settings
from modelferry.contract import CheckImportEvent, ImportJobStatus
from modelferry.stages.import_ import check_import


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = CheckImportEvent.model_validate(event)
    settings = load_settings(ImportSettings)
    status = check_import(parsed.job_arn, bedrock=client("bedrock"), timeout_seconds=settings.import_timeout_seconds)
    logger.info("import status", extra=status.model_dump(mode="json"))
    if status.status == ImportJobStatus.COMPLETED:
        metrics.add_metric(name="ImportSeconds", unit=MetricUnit.Seconds, value=status.elapsed_seconds)
    return status.model_dump(mode="json")
