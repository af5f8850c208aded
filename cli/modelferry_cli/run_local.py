"""`modelferry run-local`: the whole workflow on this machine, printed as it ran."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from modelferry.contract import cause_message
from modelferry_cli.local import extra
from modelferry_cli.local.rig import ExecutionReport, LocalRig

DEMO_MODEL_NAME = "gpt-oss-tiny-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", help="Hub repository ORG/NAME (default: the generated demo model)")
    parser.add_argument("--name", default=DEMO_MODEL_NAME, help="imported model name (default: %(default)s)")
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument("--input", type=argparse.FileType("r"), help="JSON file with more execution input fields")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up per call, so redirected output is honoured
    if not extra.check_installed(out):
        return 2
    from modelferry_cli.local.hub import DEMO_REPO_ID

    hf_endpoint = os.environ.get("HF_ENDPOINT")
    if args.repo and not hf_endpoint:
        print("--repo needs HF_ENDPOINT (a Hub to read from); without it the generated demo model is used", file=out)
        return 2
    request: dict[str, Any] = json.load(args.input) if args.input else {}
    request.update({"repo_id": args.repo or DEMO_REPO_ID, "model_name": args.name})
    if args.revision:
        request["revision"] = args.revision
    with LocalRig(hf_endpoint=hf_endpoint) as rig:
        if not args.json:
            print(
                f"Hub:     {hf_endpoint or rig.hub.url + ' (built-in local Hub, generated GPT-OSS-shaped model)'}",
                file=out,
            )
            print(f"Bedrock: {rig.bedrock.url if rig.bedrock else '-'} (local emulator)", file=out)
            print(f"Input:   {json.dumps(request)}", file=out)
        report = rig.run(request)
    if args.json:
        print(json.dumps(report.to_json_dict(), default=str), file=out)
    else:
        print_report(report, out)
    return 0 if report.status == "SUCCEEDED" else 1


def print_report(report: ExecutionReport, out: TextIO) -> None:
    print("\nStates:", file=out)
    for state in report.states:
        mark = "x" if state.status == "failed" else "-"
        print(f"  {mark} {state.name:<26} {state.seconds * 1000:8.0f} ms", file=out)
    output = report.output or {}
    plan = output.get("plan") or {}
    manifest = plan.get("manifest") or {}
    validation = output.get("validation") or {}
    if manifest:
        print(
            f"\nCopied:  {manifest.get('file_count')} files, {manifest.get('total_bytes')} bytes -> {report.s3_uri}",
            file=out,
        )
    if validation:
        fixes = ", ".join(f"{f.get('path')} ({f.get('rule_code')})" for f in validation.get("fixes") or []) or "none"
        print(f"Checked: {validation.get('files_verified')} files verified in S3; fixes: {fixes}", file=out)
    job = output.get("import") or {}
    if job:
        status = output.get("import_status") or {}
        print(
            f"Import:  {job.get('job_name')} -> {status.get('status')} ({status.get('imported_model_arn')})", file=out
        )
    verify = output.get("verify") or {}
    if verify:
        print(
            f"Verify:  {verify.get('reply')!r} ({verify.get('finish_reason')}, {verify.get('total_tokens')} tokens)",
            file=out,
        )
    print(f"Waits:   {report.simulated_wait_seconds:.0f} s of Wait/Retry time simulated, not slept", file=out)
    for note in report.notifications:
        print(f"\nNotification: {note['subject']}", file=out)
        print("  " + (note["message"] or "").split("\n\nDetails:")[0].replace("\n", "\n  "), file=out)
    outcome = f" ({report.error}: {cause_message(report.cause)})" if report.error else ""
    print(f"\nResult:  {report.status}{outcome}", file=out)
