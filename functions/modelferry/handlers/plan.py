from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.hub import HubClient
from modelferry.adapters.hub_http import wait_budget_for
from modelferry.adapters.observability import logger, metrics, tracer
from modelferry.adapters.secrets import hub_token
from modelferry.adapters.settings import PlanSettings, load_settings
from modelferry.contract import PlanEvent
from modelferry.request import parse_request
from modelferry.stages.plan import plan

# Time kept for Plan's own requests and S3 writes, outside the 429 wait budget.
PLAN_WORK_SECONDS = 60.0


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = PlanEvent.model_validate(event)
    request = parse_request(parsed.request)  # bad input fails here, before any side effect
    settings = load_settings(PlanSettings)
    # 429 waits of the whole Plan (listing, config and header reads) share one budget, inside the Lambda's timeout
    budget = wait_budget_for(context.get_remaining_time_in_millis() / 1000, reserve_seconds=PLAN_WORK_SECONDS)
    with HubClient(settings.hf_endpoint, hub_token(settings.hf_token_secret_arn), wait_budget_seconds=budget) as hub:
        result = plan(request, parsed.execution, settings, hub=hub, s3=client("s3"))
    logger.info(
        "planned",
        extra={"commit": result.run.commit, "files": result.manifest.file_count, "bytes": result.manifest.total_bytes},
    )
    metrics.add_metric(name="PlannedBytes", unit=MetricUnit.Bytes, value=result.manifest.total_bytes)
    return result.model_dump(mode="json")
