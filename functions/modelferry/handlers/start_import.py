from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, tracer
from modelferry.adapters.settings import StartImportSettings, load_settings
from modelferry.contract import StartImportEvent
from modelferry.stages.import_ import start_import


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = StartImportEvent.model_validate(event)
    settings = load_settings(StartImportSettings)
    # One attempt per call: throttling, the quota and 5xx answers are retried by the state machine, where every
    # attempt shows in the execution history and the backoff has jitter.
    result = start_import(
        parsed.run,
        bedrock=client("bedrock", total_max_attempts=1),
        s3=client("s3"),
        quota_wait_seconds=settings.import_quota_wait_seconds,
    )
    logger.info("import started", extra=result.model_dump(mode="json"))
    return result.model_dump(mode="json")
