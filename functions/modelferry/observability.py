"""Powertools logger, tracer and metrics shared by every handler (service name and namespace from the stack's
POWERTOOLS_* environment variables)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
