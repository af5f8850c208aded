"""`modelferry validate TARGET`: will Bedrock Custom Model Import take this model? Runs the workflow's own rules on
a local folder, a Hub repository (hf://ORG/NAME[@REVISION]) or an S3 prefix (s3://BUCKET/PREFIX), reading only
small files and safetensors headers. Exit status: 0 ok or fixable, 1 failed, 2 the target cannot be read."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from modelferry.adapters.hub import HubClient, HubFileNotFound
from modelferry.errors import ModelferryError
from modelferry.validation import (
    AppliedFix,
    Finding,
    HubRepoSource,
    LocalFolderSource,
    S3PrefixSource,
    Severity,
    Source,
    ValidationOptions,
    ValidationReport,
    WritableSource,
    apply_fixes,
    validate,
)

EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 2
# Everything that means "could not read the target" rather than "the model is wrong" (ValueError: e.g. --fix on a
# bucket root, which leaves no prefix outside the model to keep the original in).
UNREADABLE_ERRORS = (OSError, ModelferryError, HubFileNotFound, ClientError, BotoCoreError, ValueError)

VERDICT_LINES = {
    "ok": "OK: Bedrock Custom Model Import should accept this model",
    "fixable": "FIXABLE: Bedrock would refuse it as is; --fix (or the workflow, after the copy) repairs it",
    "failed": "FAILED: Bedrock would refuse this model",
}
SECTIONS = (
    (Severity.ERROR, "errors"),
    (Severity.FIXABLE, "fixable"),
    (Severity.WARNING, "warnings"),
    (Severity.INFO, "not copied / info"),
)


class TargetUnreadable(Exception):
    """The target cannot be read, or names no readable model location (exit status 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", metavar="TARGET", help="a local folder, hf://ORG/NAME[@REVISION] or s3://BUCKET/PREFIX"
    )
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object (verdict, findings...)")
    parser.add_argument(
        "--fix",
        action="store_true",
        help="repair fixable findings in place (local folder: keeps FILE.orig; S3: keeps the original under the "
        "sibling prefix PREFIX.orig/), then validate again",
    )
    parser.add_argument(
        "--allow-quantized",
        action="store_true",
        help="report a declared quantization (e.g. MXFP4) as a warning, not an error: the import is undocumented",
    )
    parser.add_argument("--revision", help="Hub branch, tag or commit (default: the @REVISION in TARGET, else main)")
    parser.add_argument(
        "--region",
        help="the AWS Region the import would run in, checked against where Custom Model Import (and this "
        "architecture) imports (default: the configured AWS Region, else no Region check)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        report, applied = _validate(args)
    except (TargetUnreadable, *UNREADABLE_ERRORS) as exc:
        print(f"modelferry validate: cannot read {args.target}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.json:
        document = report.to_json_dict()
        if args.fix:
            document["fixes"] = [fix.to_json_dict() for fix in applied]
        print(json.dumps(document, indent=2))
    else:
        print(render(report, applied))
    return EXIT_FAILED if report.verdict == "failed" else EXIT_OK


def _validate(args: argparse.Namespace) -> tuple[ValidationReport, list[AppliedFix]]:
    options = ValidationOptions(allow_quantized=args.allow_quantized, region=args.region or configured_region())
    source = open_source(args.target, args.revision)
    if args.fix and not isinstance(source, WritableSource):
        raise TargetUnreadable("--fix needs a local folder or an s3:// prefix: the Hub is read-only")
    if not source.list_files():
        raise TargetUnreadable(f"{source.location} holds no files")
    report = validate(source, options)
    if not (args.fix and report.by_severity(Severity.FIXABLE)):
        return report, []
    applied = apply_fixes(source, report)
    return validate(source, options), applied


def configured_region() -> str | None:
    """AWS_REGION (what the AWS CLI v2 and Lambda use; boto3 ignores it), else the Region boto3 would use
    (AWS_DEFAULT_REGION, the profile's config), else None."""
    return os.environ.get("AWS_REGION") or boto3.session.Session().region_name


def open_source(target: str, revision: str | None) -> Source:
    if target.startswith("hf://"):
        repo_id, _, target_revision = target.removeprefix("hf://").partition("@")
        if not repo_id or repo_id.count("/") > 1:
            raise TargetUnreadable("a Hub target is hf://ORG/NAME or hf://ORG/NAME@REVISION")
        if revision and target_revision and revision != target_revision:
            raise TargetUnreadable(f"--revision {revision} contradicts @{target_revision} in the target")
        # A person's machine: the token comes from the environment, as for the huggingface_hub CLI.
        hub = HubClient(os.environ.get("HF_ENDPOINT"), os.environ.get("HF_TOKEN") or None)
        commit = hub.resolve_commit(repo_id, revision or target_revision or "main")
        return HubRepoSource(hub, repo_id, commit)
    if target.startswith("s3://"):
        bucket, _, prefix = target.removeprefix("s3://").partition("/")
        if not bucket:
            raise TargetUnreadable("an S3 target is s3://BUCKET/PREFIX")
        return S3PrefixSource(boto3.client("s3"), bucket, prefix)
    path = Path(target)
    if not path.is_dir():
        looks_like_repo = target.count("/") == 1 and not path.exists()
        hint = f" (for a Hub repository write hf://{target})" if looks_like_repo else ""
        raise TargetUnreadable(f"no such folder{hint}")
    return LocalFolderSource(path)


def render(report: ValidationReport, applied: list[AppliedFix]) -> str:
    architectures = f" ({', '.join(report.architectures)})" if report.architectures else ""
    share = f", {report.bytes_read / report.total_weight_bytes:.4%} of the weights" if report.total_weight_bytes else ""
    lines = [
        VERDICT_LINES[report.verdict],
        f"  {report.target}: {report.model_type or 'unknown model type'}{architectures}, "
        f"{_size(report.total_weight_bytes)} of safetensors weights, {report.files_checked} files to copy",
        f"  Region: {region}" if (region := report.region) else "  Region: not checked (no --region, none configured)",
        f"  read {_size(report.bytes_read)}{share} in {report.read_requests} reads",
    ]
    for fix in applied:
        lines.append(f"  fixed {fix.path} ({fix.rule_code}); original kept at {fix.backup}")
    for severity, title in SECTIONS:
        findings = report.by_severity(severity)
        if findings:
            lines += ["", f"{title} ({len(findings)})", *(_render_finding(f) for f in findings)]
    return "\n".join(lines)


def _render_finding(finding: Finding) -> str:
    where = f"  {finding.path}" if finding.path else ""
    if finding.severity is Severity.INFO:  # one line each: they are many and their hint is the same
        return f"  {finding.code}{where}: {finding.message}"
    return (
        f"  {finding.code}{where}\n      {finding.message}\n      fix: {finding.hint}\n      source: {finding.source}"
    )


def _size(count: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
