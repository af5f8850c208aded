"""`modelferry run-local`: the whole workflow on this machine, printed as it ran."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from modelferry.contract import WorkflowState, cause_message
from modelferry_cli.local import extra
from modelferry_cli.local.rig import ExecutionReport, LocalRig

DEMO_MODEL_NAME = "gpt-oss-tiny-demo"
CHAT_PROMPT = "What does Custom Model Import do?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", help="Hub repository ORG/NAME (default: the generated demo model)")
    parser.add_argument("--name", default=DEMO_MODEL_NAME, help="imported model name (default: %(default)s)")
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument("--input", type=argparse.FileType("r"), help="JSON file with more execution input fields")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument(
        "--batch",
        type=Path,
        metavar="FILE",
        help='run every model of a request file (one request or {"requests": [...]}) at once through one rig',
    )
    parser.add_argument(
        "--imported-models-quota",
        type=int,
        metavar="N",
        help="with --batch: imported models the emulator allows (default: room for the whole batch)",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up per call, so redirected output is honoured
    if not extra.check_installed(out):
        return 2
    if args.batch is not None:
        from modelferry_cli import run_local_batch

        return run_local_batch.run(
            args.batch, as_json=args.json, imported_models_quota=args.imported_models_quota, out=out
        )
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
            if report.imported_model_arn and report.status == "SUCCEEDED":
                chat_with(report.imported_model_arn, args.name, out)
    return 0 if report.status == "SUCCEEDED" else 1


def chat_with(model_arn: str, name: str, out: TextIO) -> None:
    """What a user does next, while the emulator still runs: one `modelferry chat` exchange with the model."""
    import boto3

    from modelferry.openai_chat import chat_body, parse_chat_reply
    from modelferry_cli.chat_cmd import WarmUp, print_exchange

    print(f'\n$ modelferry chat {name} "{CHAT_PROMPT}"', file=out)
    warm_up = WarmUp(boto3.client("bedrock-runtime"), attempts=10, interval=0, err=out)
    raw, latency_ms = warm_up.invoke(model_arn, chat_body(CHAT_PROMPT, max_tokens=256))
    print_exchange(parse_chat_reply(raw), latency_ms, warm_up.refusals, out)


def print_report(report: ExecutionReport, out: TextIO) -> None:
    print("\nStates:", file=out)
    for run in report.states:
        mark = "x" if run.status == "failed" else "-"
        print(f"  {mark} {run.name:<26} {run.seconds * 1000:8.0f} ms", file=out)
    if report.state is not None:
        _print_results(report.state, out)
    print(f"Waits:   {report.simulated_wait_seconds:.0f} s of Wait/Retry time simulated, not slept", file=out)
    # The subject is the SNS message's; the text a person reads is the outcome event's (the SNS body adds the
    # details as JSON). Notify publishes one of each per attempt, in that order, with the same subject.
    for note, event in zip(report.notifications, report.events, strict=False):
        print(f"\nNotification: {note['subject']}", file=out)
        print("  " + str(event["detail"]["text"]).replace("\n", "\n  "), file=out)
    outcome = f" ({report.error}: {cause_message(report.cause)})" if report.error else ""
    print(f"\nResult:  {report.status}{outcome}", file=out)


def _print_results(state: WorkflowState, out: TextIO) -> None:
    if state.plan is not None:
        run, manifest = state.plan.run, state.plan.manifest
        print(f"\nCopied:  {manifest.file_count} files, {manifest.total_bytes} bytes -> {run.s3_uri}", file=out)
    if state.validation is not None:
        validation = state.validation
        fixes = ", ".join(f"{fix.path} ({fix.rule_code})" for fix in validation.fixes) or "none"
        print(f"Checked: {validation.files_verified} files verified in S3; fixes: {fixes}", file=out)
    if state.import_ is not None:
        job = state.import_status
        status, arn = (job.status, job.imported_model_arn) if job else (None, None)
        print(f"Import:  {state.import_.job_name} -> {status} ({arn})", file=out)
    if state.verify is not None:
        verify = state.verify
        print(f"Verify:  {verify.reply!r} ({verify.finish_reason}, {verify.total_tokens} tokens)", file=out)
