from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, metrics, tracer
from modelferry.adapters.settings import VerifySettings, load_settings
from modelferry.contract import VerifyEvent
from modelferry.stages.verify import verify_model


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = VerifyEvent.model_validate(event)
    settings = load_settings(VerifySettings)
    # botocore retries ModelNotReadyException on its own (a modelled retryable error); the state machine's Retry
    # owns that budget instead, so each attempt shows in the execution history.
    # A read timeout well inside the function's own (template.yaml) so a slow answer is reported, not killed.
    runtime = client("bedrock-runtime", total_max_attempts=1, read_timeout=90)
    # Fewer, shorter attempts than the default 8 x 120 s: every call's worst case together must end inside the
    # function's Timeout (tests/unit/test_verify_budget.py adds them up).
    result = verify_model(
        parsed.model_arn,
        parsed.run,
        bedrock=client("bedrock", total_max_attempts=3, read_timeout=20),
        runtime=runtime,
        s3=client("s3", total_max_attempts=3, read_timeout=20),
        not_ready_budget_seconds=settings.model_not_ready_budget_seconds,
    )
    logger.info("verified", extra={"latency_ms": result.latency_ms, "total_tokens": result.total_tokens})
    metrics.add_metric(name="VerifyLatency", unit=MetricUnit.Milliseconds, value=result.latency_ms)
    return result.model_dump(mode="json")
