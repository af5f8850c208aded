"""Validate in S3: every planned file is there and verified, then the Bedrock rules run on the copied prefix and
fixable findings (the index metadata) are fixed in place, the original kept under the run prefix."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from modelferry.adapters.s3 import get_json, put_json
from modelferry.errors import CopyIncomplete, ModelValidationFailed
from modelferry.manifest import META_BLOB_SHA1, META_FIXED_SHA256, META_SHA256, Manifest, ManifestEntry
from modelferry.selection import Selection
from modelferry.stages.plan import RunInfo, finding_severity
from modelferry.validation import S3PrefixSource, ValidationOptions, apply_fixes, validate


class CheckResult(BaseModel):
    verdict: str
    files_verified: int
    bytes_verified: int
    fixes: list[dict[str, Any]]
    report_key: str
    warnings: int


def check_copied_model(run: RunInfo, manifest_key: str, *, s3: Any) -> CheckResult:
    manifest = Manifest.model_validate(get_json(s3, run.bucket, manifest_key))
    problems = [p for p in (_problem(s3, manifest.bucket, entry) for entry in manifest.files) if p]
    if problems:
        shown = "; ".join(problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise CopyIncomplete(
            f"{len(problems)} of {len(manifest.files)} planned files are not verified in S3: {shown}{more}"
        )

    source = S3PrefixSource(s3, run.bucket, run.model_prefix)
    options = ValidationOptions(
        allow_quantized=run.allow_quantized, selection=Selection(include=run.include, exclude=run.exclude)
    )
    report = validate(source, options)
    applied = []
    if report.verdict == "fixable":
        applied = apply_fixes(source, report, backup_prefix=f"{run.run_prefix}original/")
        report = validate(source, options)

    report_key = f"{run.run_prefix}validation/s3-report.json"
    document = report.to_json_dict()
    document["fixes"] = [_dump(fix) for fix in applied]
    put_json(s3, run.bucket, report_key, document)
    errors = [f for f in report.findings if finding_severity(f) == "error"]
    if report.verdict == "failed":
        details = "; ".join(f"{f.code} ({f.path or 'model'}): {f.message}" for f in errors[:5])
        raise ModelValidationFailed(f"the copied model at s3://{run.bucket}/{run.model_prefix} fails: {details}")
    return CheckResult(
        verdict=report.verdict,
        files_verified=len(manifest.files),
        bytes_verified=manifest.total_bytes,
        fixes=[_dump(fix) for fix in applied],
        report_key=report_key,
        warnings=sum(1 for f in report.findings if finding_severity(f) == "warning"),
    )


def _problem(s3: Any, bucket: str, entry: ManifestEntry) -> str | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=entry.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
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


def _dump(fix: Any) -> dict[str, Any]:
    return fix.model_dump(mode="json") if hasattr(fix, "model_dump") else dict(vars(fix))
