"""Several models through one local rig at once: one Bedrock emulator, so one import job at a time for all of them.

`run_batch` starts one execution per request (as the request-file trigger does, all at once), waits for every one,
and reports each model's outcome, its turn in the import queue, and the order in which Bedrock saw the imports
start. It also counts, per execution, the Lambda invocations, the state transitions and the Bedrock calls, which is
what a queue saves over retrying the quota (docs/performance.md).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from modelferry.request import ImportRequest
from modelferry_cli.local.rig import REGION, ExecutionReport, LocalRig

# State transitions as Step Functions bills them, retries included (AWS Step Functions pricing: "including
# retries"): each state entered, and each Task attempt after a state's first.
_TRANSITION_SUFFIX = "StateEntered"
# Bedrock calls made for the import (the queue is about these); verification's own calls name the model by ARN.
_IMPORT_OPERATIONS = {"CreateModelImportJob", "GetModelImportJob", "ListModelImportJobs", "DeleteImportedModel"}


@dataclass
class BatchRun:
    model_name: str
    execution_arn: str
    report: ExecutionReport
    lambda_invocations: int
    state_transitions: int
    bedrock_import_calls: int
    quota_refusals: int
    ticket: int | None
    waited_seconds: int | None

    @property
    def status(self) -> str:
        return self.report.status


@dataclass
class BatchReport:
    runs: list[BatchRun]
    import_order: list[str]  # model names, in the order Bedrock created their import jobs
    wall_seconds: float
    lambda_invocations: Counter[str] = field(default_factory=Counter)  # per function, the whole batch

    @property
    def succeeded(self) -> int:
        return sum(run.status == "SUCCEEDED" for run in self.runs)

    def queue_order(self) -> list[str]:
        """Model names in the order their executions reached the queue (ticket order)."""
        queued = [run for run in self.runs if run.ticket is not None]
        return [run.model_name for run in sorted(queued, key=lambda run: run.ticket or 0)]

    def per_model(self, attribute: str) -> float:
        return sum(getattr(run, attribute) for run in self.runs) / max(1, len(self.runs))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "succeeded": self.succeeded,
            "models": len(self.runs),
            "wall_seconds": round(self.wall_seconds, 3),
            "import_order": self.import_order,
            "queue_order": self.queue_order(),
            "runs": [
                {
                    "model_name": run.model_name,
                    "status": run.status,
                    "error": run.report.error,
                    "execution_arn": run.execution_arn,
                    "ticket": run.ticket,
                    "waited_seconds": run.waited_seconds,
                    "lambda_invocations": run.lambda_invocations,
                    "state_transitions": run.state_transitions,
                    "bedrock_import_calls": run.bedrock_import_calls,
                    "quota_refusals": run.quota_refusals,
                }
                for run in self.runs
            ],
        }


def run_batch(rig: LocalRig, requests: Sequence[ImportRequest], *, timeout: float = 900.0) -> BatchReport:
    """Start every request at once, wait for all, report. Requests need distinct model names (each is one import)."""
    names = [request.model_name for request in requests]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"model_name: each model of a batch needs its own name; repeated: {', '.join(duplicates)}")
    started = time.monotonic()
    arns = [
        rig.start(
            request.model_dump(mode="json", exclude_unset=True), name=f"batch-{index:03d}-{request.model_name}"[:80]
        )
        for index, request in enumerate(requests)
    ]
    reports = [rig.wait(arn, timeout=timeout) for arn in arns]
    wall = time.monotonic() - started
    rig.deliver_status_changes()
    return _report(rig, names, reports, wall)


def _report(rig: LocalRig, names: list[str], reports: list[ExecutionReport], wall: float) -> BatchReport:
    if rig.bedrock is None:
        raise RuntimeError("the rig is not set up")
    calls = rig.bedrock.calls
    jobs = sorted(rig.bedrock.jobs, key=lambda job: job.creation_time)
    job_owner = {job.arn: job.model_name for job in jobs} | {job.name: job.model_name for job in jobs}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    runs = []
    for name, report in zip(names, reports, strict=True):
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=report.execution_arn)
        history = [event for page in pages for event in page["events"]]
        mine = [call for call in calls if _model_of(call.params, job_owner) == name]
        queue = (report.output or {}).get("queue") or {}
        runs.append(
            BatchRun(
                model_name=name,
                execution_arn=report.execution_arn,
                report=report,
                lambda_invocations=sum(
                    1 for _, event, _ in rig.lambda_calls if _execution_of(event) == report.execution_arn
                ),
                state_transitions=_state_transitions(history),
                bedrock_import_calls=sum(1 for call in mine if call.operation in _IMPORT_OPERATIONS),
                quota_refusals=sum(1 for call in mine if call.error == "ServiceQuotaExceededException"),
                ticket=queue.get("ticket"),
                waited_seconds=queue.get("waited_seconds"),
            )
        )
    return BatchReport(
        runs=runs,
        import_order=[job.model_name for job in jobs],
        wall_seconds=wall,
        lambda_invocations=Counter(function for function, _, _ in rig.lambda_calls),
    )


def _state_transitions(history: list[Any]) -> int:
    kinds = Counter(str(event["type"]) for event in history)
    entered = sum(count for kind, count in kinds.items() if kind.endswith(_TRANSITION_SUFFIX))
    retries = max(0, kinds["TaskScheduled"] - kinds["TaskStateEntered"])
    return entered + retries


def _model_of(params: dict[str, Any], job_owner: dict[str, str]) -> str | None:
    """The model a Bedrock call was made for: by its model name, or by its job's name or ARN."""
    if "importedModelName" in params:
        return str(params["importedModelName"])
    identifier = params.get("jobIdentifier")
    if identifier:
        return job_owner.get(str(identifier))
    return None


def _execution_of(event: Any) -> str | None:
    """The execution a Lambda invocation served: every stage's payload names it; the cleanup's event in `detail`."""
    if not isinstance(event, dict):
        return None
    if "execution_id" in event:
        return str(event["execution_id"])
    detail = event.get("detail")
    return str(detail.get("executionArn")) if isinstance(detail, dict) and "executionArn" in detail else None
