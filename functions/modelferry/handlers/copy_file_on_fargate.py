"""The Fargate copy task, `python -m modelferry.handlers.copy_file_on_fargate`: one file too large for the Lambda
time budget.

Step Functions (`ecs:runTask.sync`) passes one CopyItem as JSON in the COPY_ITEM environment variable (a container
override); the stack sets HF_ENDPOINT, HF_TOKEN_SECRET_ARN and MODEL_BUCKET. The copy is the very `copy_file` the
copy Lambda runs. Logs (with progress every 10 %) go to stderr; the result is one JSON line on stdout. A failure exits
with status 1 and writes `{"errorType": ClassName, "errorMessage": ...}` on stderr, as a Lambda error reads.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from pydantic import ValidationError

from modelferry.adapters.aws import client
from modelferry.adapters.settings import CopySettings, load_settings
from modelferry.contract import CopyItem, CopyResult
from modelferry.errors import InvalidRequest
from modelferry.stages.copy import copy_item
from modelferry.transfer.engine import Progress, every_tenth


def run_copy(logger: Logger) -> CopyResult:
    try:
        item = CopyItem.model_validate_json(os.environ.get("COPY_ITEM") or "")
    except ValidationError as exc:
        raise InvalidRequest(f"COPY_ITEM is not a CopyItem JSON document: {exc}") from None
    settings = load_settings(CopySettings)
    if item.run.bucket != settings.model_bucket:
        raise InvalidRequest(
            f"COPY_ITEM names bucket {item.run.bucket!r}; this task writes to {settings.model_bucket!r}"
        )
    # The same correlation id as every Lambda of the execution: the execution ARN.
    logger.set_correlation_id(item.execution_id)
    logger.append_keys(run_id=item.run.run_id, path=item.file.path)
    return copy_item(item, settings, s3=client("s3"), on_progress=_log_progress(logger))


def _log_progress(logger: Logger) -> Progress:
    return every_tenth(
        lambda done, total, percent: logger.info(
            "copy progress", extra={"bytes_done": done, "bytes_total": total, "percent": percent}
        )
    )


def main() -> int:
    logger = Logger(service="modelferry-copy-task", logger_handler=logging.StreamHandler(sys.stderr))
    copy_config_to_registered_loggers(source_logger=logger, include={"modelferry"})  # the engine's retries too
    try:
        result = run_copy(logger)
    except Exception as exc:  # every failure must reach the state machine as one named JSON error
        logger.exception("copy failed")
        print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), file=sys.stderr, flush=True)
        return 1
    print(result.model_dump_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
