from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelferry.adapters.aws import client
from modelferry.adapters.observability import logger, metrics, tracer
from modelferry.adapters.settings import CopySettings, load_settings
from modelferry.contract import CopyItem
from modelferry.stages.copy import copy_item
from modelferry.transfer.engine import every_tenth


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    item = CopyItem.model_validate(event)
    settings = load_settings(CopySettings)

    progress = every_tenth(
        lambda done, total, percent: logger.info(
            "copy progress",
            extra={"path": item.file.path, "bytes_done": done, "bytes_total": total, "percent": percent},
        )
    )

    seconds_left = context.get_remaining_time_in_millis() / 1000
    result = copy_item(item, settings, s3=client("s3"), on_progress=progress, seconds_left=seconds_left)
    logger.info("copied", extra=result.model_dump(mode="json"))
    metrics.add_metric(name="BytesCopied", unit=MetricUnit.Bytes, value=result.bytes_copied)
    if result.seconds > 0 and result.bytes_copied:
        throughput = result.bytes_copied / result.seconds
        metrics.add_metric(name="CopyThroughput", unit=MetricUnit.BytesPerSecond, value=throughput)
    return result.model_dump(mode="json")
