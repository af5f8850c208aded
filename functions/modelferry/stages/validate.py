"""Validate in S3: every planned file is there and verified, then the Bedrock rules run on the copied prefix and
fixable findings (the index metadata, the GPT-OSS end-of-sequence ids, a stale quantization_config) are fixed in
place, the original kept under the run prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from modelferry.adapters.aws import is_missing
from modelferry.adapters.s3 import get_json, put_json
from modelferry.contract import (
    META_BLOB_SHA1,
    META_FIXED_SHA256,
    META_SHA256,
    AppliedFixSummary,
    Manifest,
    ManifestEntry,
    RunInfo,
    ValidateResult,
)
from modelferry.errors import CopyIncomplete, ModelValidationFailed
from modelferry.selection import Selection
from modelferry.validation import S3PrefixSource, Severity, ValidationOptions, apply_fixes, validate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def check_copied_model(run: RunInfo, manifest_key: str, *, s3: S3Client) -> ValidateResult:
    manifest = Manifest.model_validate(get_json(s3, run.bucket, manifest_key))
    problems = [p for p in (_problem(s3, manifest.bucket, entry) for entry in manifest.files) if p]
    if problems:
        shown = "; ".join(problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise CopyIncomplete(
            f"{len(problems)} of {len(manifest.files)} planned files are not verified in S3: {shown}{more}"
        )

    layout = run.layout
    source = S3PrefixSource(s3, run.bucket, run.model_prefix)
    options = ValidationOptions(
        allow_quantized=run.allow_quantized, selection=Selection(include=run.include, exclude=run.exclude)
    )
    report = validate(source, options)
    applied = []
    if report.verdict == "fixable":
        applied = apply_fixes(source, report, backup_prefix=layout.originals)
        report = validate(source, options)

    fixes = [AppliedFixSummary.model_validate(fix.to_json_dict()) for fix in applied]
    document = report.to_json_dict()
    document["fixes"] = [fix.model_dump(mode="json") for fix in fixes]
    put_json(s3, run.bucket, layout.s3_report, document)
    if report.verdict == "failed":
        raise ModelValidationFailed(
            f"the copied model at s3://{run.bucket}/{run.model_prefix} fails: {report.error_summary(whole='model')}"
        )
    return ValidateResult(
        verdict=report.verdict,
        files_verified=len(manifest.files),
        bytes_verified=manifest.total_bytes,
        fixes=fixes,
        report_key=layout.s3_report,
        warnings=len(report.by_severity(Severity.WARNING)),
    )


def _problem(s3: S3Client, bucket: str, entry: ManifestEntry) -> str | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=entry.key)
    except ClientError as exc:
        if is_missing(exc):
            return f"{entry.path}: missing"
        raise
    metadata = head.get("Metadata", {})
    # A file this stage already fixed (a retried or repeated validation) differs from the Hub's by design: its
    # provenance metadata still names the verified original, and `fixed-sha256` what it holds now.
    if head["ContentLength"] != entry.size and META_FIXED_SHA256 not in metadata:
        return f"{entry.path}: {head['ContentLength']} bytes, planned {entry.size}"
    if entry.sha256 and metadata.get(META_SHA256) != entry.sha256:
        return f"{entry.path}: sha256 not recorded as verified"
    if entry.blob_id and metadata.get(META_BLOB_SHA1) != entry.blob_id:
        return f"{entry.path}: git blob sha1 not recorded as verified"
    return None
