"""Names and tokens derived from the execution, so retries and re-runs are idempotent.

Bedrock never deletes import jobs and never reuses their names, so every run needs a job name of its own; Step
Functions retries re-invoke a task with the same input, so the name and the clientRequestToken must come from the
execution, not from the clock.
"""

from __future__ import annotations

import hashlib
import re

_JOB_NAME_MAX = 63


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def import_job_name(model_name: str, execution_id: str) -> str:
    """`mf-<model>-<10 hex of the execution>`: valid for `[a-zA-Z0-9](-*[a-zA-Z0-9\\+\\-\\.])*`, at most 63."""
    suffix = _digest(execution_id, 10)
    stem = re.sub(r"[^a-zA-Z0-9-]", "-", model_name)
    stem = re.sub(r"-{2,}", "-", stem).strip("-")
    room = _JOB_NAME_MAX - len("mf--") - len(suffix)
    return f"mf-{stem[:room].rstrip('-')}-{suffix}"


def client_request_token(execution_id: str) -> str:
    """Same execution, same token: a retried CreateModelImportJob returns the first job instead of a second."""
    return f"mf-{_digest(execution_id, 48)}"


def run_id(execution_name: str) -> str:
    """A path-safe identifier of the run (execution names allow characters S3 keys should not carry)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", execution_name)[:80]
    return safe or _digest(execution_name, 16)
