"""Powertools logger, tracer and metrics shared by every handler (service name and namespace from the stack's
POWERTOOLS_* environment variables)."""

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# botocore logs every response body at DEBUG, GetSecretValue's (the Hugging Face token) included: keep that one
# logger at INFO whatever level an operator turns the function's logging up to (tests/reliability/test_secrets.py).
logging.getLogger("botocore.parsers").setLevel(logging.INFO)
