"""Secrets: the Hugging Face token comes from Secrets Manager only and appears nowhere else.

A run copies a gated repository with a token (the rig stores it in Secrets Manager, as the stack does). The token
must have been used (the Hub saw it on every API and resolve request; the copy of a gated repo succeeded) and must
not appear, in any form, in the execution input, output or history, in any Lambda payload or result, in any log
line of any function (every logger at DEBUG, Powertools' JSON logs included), in the metrics (EMF, in the same
logs), in the SNS notification or EventBridge event, in any S3 object the run wrote, or in any call the Bedrock
emulator received. Each invocation runs in a sandbox of its own: its metrics and its logs are its own.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from modelferry_cli.local import template as cfn
from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, REPO_ROOT, LocalRig, WorkerStep
from tests.support.local_run import keys, s3

pytestmark = pytest.mark.workflow

REPO = "acme/gated-gpt-oss"


def test_the_hub_token_is_used_and_appears_nowhere(
    hub: LocalHub, behaviour: EmulatorBehaviour, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    token = f"hf_{secrets.token_urlsafe(24)}"
    forms = _forms(token)
    hub.add_repo(REPO, gpt_oss_repo(), gated=True, token=token)
    caplog.set_level(logging.DEBUG)  # every stdlib logger of this process (the rig's own: the emulators)
    debug = {"POWERTOOLS_LOG_LEVEL": "DEBUG"}
    # In every function's workers too: botocore, httpx, huggingface_hub, modelferry, onto the function's log.
    every_logger_at_debug = WorkerStep("tests.support.worker_steps:debug_logging")

    with LocalRig(
        hf_endpoint=hub.url, behaviour=behaviour, hf_token=token, settings=debug, worker_setup=[every_logger_at_debug]
    ) as rig:
        caplog.clear()  # setting up stored the token in Secrets Manager, as the operator does: not the workflow
        capfd.readouterr()
        report = rig.run({"repo_id": REPO, "model_name": "gated-gpt-oss", "verify_expect": "You asked"})

        assert report.status == "SUCCEEDED", [r for _, _, r in rig.lambda_calls if "errorType" in r]
        # The token was really used: every request for the gated repo's metadata and files carried it.
        gated = [r for r in hub.requests if r.endpoint in {"api", "resolve"}]
        assert gated
        assert all(r.has_auth for r in gated)
        assert not any(r.has_auth for r in hub.requests if r.endpoint == "cdn")  # never sent to the CDN host

        sfn = boto3.client("stepfunctions", region_name=REGION)
        history = sfn.get_execution_history(executionArn=report.execution_arn, maxResults=1000)["events"]
        map_runs = sfn.list_map_runs(executionArn=report.execution_arn)["mapRuns"]
        places: dict[str, Any] = {
            "execution input": report.input,
            "execution output": report.output,
            "execution history": history,
            "map runs": [sfn.describe_map_run(mapRunArn=run["mapRunArn"]) for run in map_runs],
            "Lambda payloads and results": rig.lambda_calls,
            "SNS notifications": report.notifications,
            "EventBridge events": report.events,
            "S3 objects the run wrote": {key: s3().get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys()},
            "Bedrock calls": rig.bedrock.calls,
            # What CloudWatch Logs would hold: each invocation's stdout and stderr, EMF metrics documents included.
            "function logs": {function: rig.logs(function) for function in cfn.functions(_TEMPLATE)},
        }
    out, err = capfd.readouterr()
    places["stdout (Powertools logs and metrics)"] = out
    places["stderr"] = err
    places["log records"] = [(r.name, r.levelname, r.getMessage(), r.__dict__) for r in caplog.records]

    # The capture is not empty: the run's logs and metrics really are in what is searched.
    copy_logs = "".join(places["function logs"]["CopyFileFunction"])
    emf = [line for line in copy_logs.splitlines() if line.startswith('{"_aws"')]
    assert any("BytesCopied" in line for line in emf)
    assert "DEBUG botocore" in copy_logs
    assert '"message":"copied"' in copy_logs.replace(" ", "")

    found = {place: form for place, value in places.items() for form in forms if form in _text(value)}
    assert found == {}, f"the token leaked into: {sorted(found)}"


_TEMPLATE = cfn.load_template(REPO_ROOT / "template.yaml")


def _forms(token: str) -> list[str]:
    """The token, and what it looks like URL-quoted, base64-encoded (as in Basic auth) or cut after its prefix."""
    return [
        token,
        quote(token, safe=""),
        base64.b64encode(token.encode()).decode(),
        base64.b64encode(f"user:{token}".encode()).decode()[8:],
        token[3:15],  # a distinctive piece of the secret part
    ]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return json.dumps(value, default=repr)
