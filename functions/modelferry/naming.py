"""Names and tokens derived from the execution, so retries and re-runs are idempotent.

Bedrock never deletes import jobs and never reuses their names, so every run needs a job name of its own; Step
Functions retries re-invoke a task with the same input, so the name and the clientRequestToken must come from the
execution, not from the clock.
"""

from __future__ import annotations

import hashlib
import re

# From botocore's bedrock service model (CreateModelImportJob).
JOB_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*")
JOB_NAME_MAX = 63
CLIENT_REQUEST_TOKEN_PATTERN = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?")

_JOB_PREFIX = "mf-"
_JOB_SUFFIX_HEX = 10


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def import_job_name(model_name: str, execution_id: str) -> str:
    """`mf-<model>-<10 hex of the execution>`: valid for Bedrock's jobName pattern, at most 63 characters.

    The model part keeps letters, digits and single dashes (underscores, which the job pattern refuses, become
    dashes) and is cut to fit; the suffix alone makes the name unique per execution, the model part only makes it
    readable in the console.
    """
    suffix = _digest(execution_id, _JOB_SUFFIX_HEX)
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", model_name).strip("-")
    room = JOB_NAME_MAX - len(_JOB_PREFIX) - len("-") - len(suffix)
    stem = stem[:room].rstrip("-")
    return f"{_JOB_PREFIX}{stem}-{suffix}" if stem else f"{_JOB_PREFIX}{suffix}"


def client_request_token(execution_id: str) -> str:
    """Same execution, same token: a retried CreateModelImportJob returns the first job instead of a second."""
    return f"mf-{_digest(execution_id, 48)}"


def run_id(execution_name: str) -> str:
    """A path-safe identifier of the run (execution names allow characters S3 keys should not carry)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", execution_name)[:80]
    # "." and ".." are valid execution names but would become path segments that climb out of the run prefix when
    # the prefix is synced to a disk.
    return safe if safe.strip(".") else _digest(execution_name, 16)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:M -> arn:...:execution:M:NAME (the ARN Step Functions gives that execution)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name
