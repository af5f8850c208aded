"""Powertools logger, tracer and metrics shared by every handler.

The service name and the metrics namespace are product constants (the dashboard and alarms read them), given here
rather than left to POWERTOOLS_* variables: Powertools reads those when this module is imported, which in a test
session or a local run can happen before they are set, and a namespace-less Metrics fails the handler."""

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "modelferry"
METRICS_NAMESPACE = "Modelferry"

logger = Logger(service=SERVICE)
# Only AWS calls are traced. Left to its default, the Tracer patches every library X-Ray knows when it is created,
# importing each one it finds (httpx among them) into handlers that never use it; and a traced Hub client would add a
# subsegment per ranged read of a multi-GB copy.
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

# botocore logs every response body at DEBUG, GetSecretValue's (the Hugging Face token) included: keep that one
# logger at INFO whatever level an operator turns the function's logging up to (tests/reliability/test_secrets.py).
logging.getLogger("botocore.parsers").setLevel(logging.INFO)
