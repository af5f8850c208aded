"""Plan: pin the commit, choose the files, pre-check the model on the Hub and against the stack's Region, write the
manifest.

Everything here reads the Hub and writes only under the run prefix: when the model cannot import, the run stops
here, before a single weight byte is copied and with nothing under the model prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from modelferry.adapters.hub import HubClient
from modelferry.adapters.s3 import join_prefix, put_json
from modelferry.adapters.settings import PlanSettings
from modelferry.contract import (
    ExcludedFile,
    ExecutionInfo,
    FargateNetwork,
    HubCheck,
    Manifest,
    ManifestEntry,
    ManifestRef,
    PlannedCopy,
    PlanResult,
    RunContext,
    RunInfo,
    RunLayout,
)
from modelferry.errors import FileTooLargeForLambda, ModelNotImportable
from modelferry.naming import client_request_token, import_job_name, run_id
from modelferry.request import ImportRequest
from modelferry.selection import Selection
from modelferry.validation import HubRepoSource, Severity, ValidationOptions, validate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def plan(
    request: ImportRequest, execution: ExecutionInfo, settings: PlanSettings, *, hub: HubClient, s3: S3Client
) -> PlanResult:
    commit = hub.resolve_commit(request.repo_id, request.revision)
    hub_files = hub.list_files(request.repo_id, commit)
    selection = Selection(include=request.include, exclude=request.exclude)

    the_run_id = run_id(execution.name)
    run_prefix = join_prefix(settings.runs_prefix, request.model_name, the_run_id)
    model_prefix = join_prefix(settings.model_prefix, request.model_name, commit)
    bucket = settings.model_bucket
    layout = RunLayout(run_prefix)

    # The stack's Region is where the import will run: a model that cannot import there stops here, uncopied.
    report = validate(
        HubRepoSource(hub, request.repo_id, commit, files=hub_files),
        ValidationOptions(allow_quantized=request.allow_quantized, selection=selection, region=settings.aws_region),
    )
    put_json(s3, bucket, layout.hub_report, report.to_json_dict())
    if report.verdict == "failed":
        raise ModelNotImportable(f"{request.repo_id}@{commit[:12]} cannot be imported: {report.error_summary()}")

    # The validation's own choice of files (the allow-list needs the index it read): what it checked is what is copied.
    reasons = dict(report.excluded)
    entries: list[ManifestEntry] = []
    excluded: list[ExcludedFile] = []
    for f in hub_files:
        reason = reasons.get(f.path)
        if reason:
            excluded.append(ExcludedFile(path=f.path, size=f.size, reason=reason))
            continue
        entries.append(
            ManifestEntry(
                path=f.path,
                size=f.size,
                sha256=f.sha256,
                blob_id=None if f.sha256 else f.blob_id,
                key=model_prefix + f.path,
                runner=_runner_for(f.path, f.size, settings),
            )
        )

    manifest = Manifest(
        repo_id=request.repo_id,
        revision=request.revision,
        commit=commit,
        bucket=bucket,
        model_prefix=model_prefix,
        files=entries,
        excluded=excluded,
    )
    run_context = RunContext(
        repo_id=request.repo_id, commit=commit, bucket=bucket, run_id=the_run_id, run_prefix=run_prefix
    )
    put_json(s3, bucket, layout.manifest, manifest.model_dump(mode="json"))
    put_json(
        s3, bucket, layout.copy_items, [PlannedCopy(file=e, run=run_context).model_dump(mode="json") for e in entries]
    )

    return PlanResult(
        run=RunInfo(
            run_id=the_run_id,
            execution_id=execution.id,
            started_at=execution.start_time,
            repo_id=request.repo_id,
            revision=request.revision,
            commit=commit,
            model_name=request.model_name,
            bucket=bucket,
            model_prefix=model_prefix,
            s3_uri=f"s3://{bucket}/{model_prefix}",
            run_prefix=run_prefix,
            job_name=import_job_name(request.model_name, execution.id),
            client_request_token=client_request_token(execution.id),
            import_role_arn=request.import_role_arn or settings.import_role_arn,
            poll_seconds=settings.import_poll_seconds,
            queue_wait_seconds=settings.import_queue_wait_seconds,
            if_exists=request.if_exists,
            verify_prompt=request.verify_prompt,
            verify_expect=request.verify_expect,
            verify_max_tokens=request.verify_max_tokens,
            allow_quantized=request.allow_quantized,
            include=request.include,
            exclude=request.exclude,
        ),
        manifest=ManifestRef(
            bucket=bucket,
            manifest_key=layout.manifest,
            items_key=layout.copy_items,
            file_count=len(entries),
            total_bytes=manifest.total_bytes,
            fargate_files=sum(1 for e in entries if e.runner == "fargate"),
        ),
        validation=HubCheck(
            verdict=report.verdict,
            report_key=layout.hub_report,
            **{s.value: len(report.by_severity(s)) for s in Severity},
        ),
        fargate=FargateNetwork(
            subnets=_split(settings.copy_task_subnets),
            security_groups=_split(settings.copy_task_security_groups),
            assign_public_ip="ENABLED" if settings.copy_task_assign_public_ip else "DISABLED",
        ),
    )


def _split(csv: str) -> list[str]:
    return [part.strip() for part in csv.split(",") if part.strip()]


def _runner_for(path: str, size: int, settings: PlanSettings) -> Literal["lambda", "fargate"]:
    if size <= settings.lambda_max_file_bytes:
        return "lambda"
    if settings.copy_task_enabled:
        return "fargate"
    raise FileTooLargeForLambda(
        f"{path} is {size} bytes, above the Lambda copy threshold of {settings.lambda_max_file_bytes} bytes "
        "(stack parameter LambdaMaxFileBytes), and no Fargate copy task is configured (stack parameter "
        "CopyTaskImageUri): configure the image, or raise the threshold if the file copies within 15 minutes"
    )
