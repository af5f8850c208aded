"""Stack configuration, read from environment variables when a handler runs (never at import time).

Each stage has its own small settings model so a function fails fast, naming the variable, when the stack forgot
one it needs; optional values are empty strings in CloudFormation, read here as None.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

T = TypeVar("T", bound=BaseModel)


class ConfigurationError(RuntimeError):
    """A required environment variable is missing or malformed: a deployment problem, not a request problem."""


class _EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class HubSettings(_EnvSettings):
    hf_endpoint: str = Field(default="https://huggingface.co", alias="HF_ENDPOINT")
    hf_token_secret_arn: str | None = Field(default=None, alias="HF_TOKEN_SECRET_ARN")


class PlanSettings(HubSettings):
    model_bucket: str = Field(alias="MODEL_BUCKET")
    model_prefix: str = Field(alias="MODEL_PREFIX")
    runs_prefix: str = Field(alias="RUNS_PREFIX")
    import_role_arn: str = Field(alias="IMPORT_ROLE_ARN")
    import_poll_seconds: int = Field(alias="IMPORT_POLL_SECONDS", ge=1, le=3600)
    import_queue_wait_seconds: int = Field(alias="IMPORT_QUEUE_WAIT_SECONDS", ge=60)
    lambda_max_file_bytes: int = Field(alias="LAMBDA_MAX_FILE_BYTES", ge=1)
    copy_task_enabled: bool = Field(default=False, alias="COPY_TASK_ENABLED")
    copy_task_subnets: str = Field(default="", alias="COPY_TASK_SUBNETS")
    copy_task_security_groups: str = Field(default="", alias="COPY_TASK_SECURITY_GROUPS")
    copy_task_assign_public_ip: bool = Field(default=True, alias="COPY_TASK_ASSIGN_PUBLIC_IP")
    # Set by the Lambda runtime itself (a reserved variable, never in template.yaml): the Region the import runs in.
    aws_region: str | None = Field(default=None, alias="AWS_REGION")


class CopySettings(HubSettings):
    model_bucket: str = Field(alias="MODEL_BUCKET")


class ImportSettings(_EnvSettings):
    import_timeout_seconds: int = Field(alias="IMPORT_TIMEOUT_SECONDS", ge=60)


class StartImportSettings(_EnvSettings):
    import_quota_wait_seconds: int = Field(alias="IMPORT_QUOTA_WAIT_SECONDS", ge=60)


class ImportQueueSettings(_EnvSettings):
    import_queue_table: str = Field(alias="IMPORT_QUEUE_TABLE", min_length=3)


class VerifySettings(_EnvSettings):
    model_not_ready_budget_seconds: int = Field(alias="MODEL_NOT_READY_BUDGET_SECONDS", ge=60)


class NotifySettings(_EnvSettings):
    topic_arn: str = Field(alias="TOPIC_ARN")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    price_per_cmu_minute: float = Field(alias="PRICE_PER_CMU_MINUTE", ge=0)
    storage_price_per_cmu_month: float = Field(alias="STORAGE_PRICE_PER_CMU_MONTH", ge=0)


class RequestFileSettings(_EnvSettings):
    model_bucket: str = Field(alias="MODEL_BUCKET")
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")


def load_settings(model: type[T]) -> T:
    """Build `model` from the environment; empty values count as unset."""
    values = {}
    for field in model.model_fields.values():
        value = os.environ.get(field.alias or "")
        if value:
            values[field.alias] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigurationError(f"environment of this function is incomplete: {problems}") from None
