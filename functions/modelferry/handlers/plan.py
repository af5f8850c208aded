from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.hub import HubClient
from modelferry.adapters.observability import logger, metrics, tracer
from modelferry.adapters.secrets import hub_token
from modelferry.adapters.settings import PlanSettings, load_settings
from modelferry.contract import PlanEvent
from modelferry.request import parse_request
from modelferry.stages.plan import plan


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = PlanEvent.model_validate(event)
    request = parse_request(parsed.request)  # bad input fails here, before any side effect
    settings = load_settings(PlanSettings)
    with HubClient(settings.hf_endpoint, hub_token(settings.hf_token_secret_arn)) as hub:
        result = plan(request, parsed.execution, settings, hub=hub, s3=client("s3"))
    logger.info(
        "planned",
        extra={"commit": result.run.commit, "files": result.manifest.file_count, "bytes": result.manifest.total_bytes},
    )
    metrics.add_metric(name="PlannedBytes", unit=MetricUnit.Bytes, value=result.manifest.total_bytes)
    return result.model_dump(mode="json")
