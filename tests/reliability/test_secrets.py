"""Secrets: the Hugging Face token comes from Secrets Manager only and appears nowhere else.

A run copies a gated repository with a token (the rig stores it in Secrets Manager, as the stack does). The token
must have been used (the Hub saw it on every API and resolve request; the copy of a gated repo succeeded) and must
not appear, in any form, in the execution input, output or history, in any Lambda payload or result, in any log
line (every logger at DEBUG, Powertools' JSON logs included), in the metrics (as EMF), in the SNS
notification or EventBridge event, in any S3 object the run wrote, or in any call the Bedrock emulator received.
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

from modelferry.adapters.observability import logger as powertools_logger
from modelferry.adapters.observability import metrics
from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, LocalRig
from tests.support.local_run import keys, s3

pytestmark = pytest.mark.workflow

REPO = "acme/gated-gpt-oss"


def test_the_hub_token_is_used_and_appears_nowhere(
    hub: LocalHub, behaviour: EmulatorBehaviour, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    token = f"hf_{secrets.token_urlsafe(24)}"
    forms = _forms(token)
    hub.add_repo(REPO, gpt_oss_repo(), gated=True, token=token)
    caplog.set_level(logging.DEBUG)  # every stdlib logger: botocore, httpx, huggingface_hub, modelferry
    debug = {"POWERTOOLS_LOG_LEVEL": "DEBUG"}
    previous_level = powertools_logger.log_level

    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour, hf_token=token, settings=debug) as rig:
        powertools_logger.setLevel(logging.DEBUG)  # the handlers' logger was made before the rig set its level
        caplog.clear()  # setting up stored the token in Secrets Manager, as the operator does: not the workflow
        # The rig empties the shared metrics after each invocation: keep each invocation's EMF document first.
        emf: list[Any] = []
        record_call = rig._record_call

        def keep_metrics_then_record(function: str, event: Any, result: Any) -> None:
            with rig.calls_lock:  # another invocation ending now would empty the set between the check and the read
                if metrics.metric_set:
                    emf.append(metrics.serialize_metric_set())
                record_call(function, event, result)

        rig._record_call = keep_metrics_then_record  # type: ignore[method-assign]
        capfd.readouterr()
        try:
            report = rig.run({"repo_id": REPO, "model_name": "gated-gpt-oss", "verify_expect": "You asked"})
        finally:
            powertools_logger.setLevel(previous_level)

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
            # The rig disables publishing: what CloudWatch would receive, as the EMF documents Powertools prints.
            "metrics (EMF)": emf,
        }
    out, err = capfd.readouterr()
    places["stdout (Powertools logs and metrics)"] = out
    places["stderr"] = err
    places["log records"] = [(r.name, r.levelname, r.getMessage(), r.__dict__) for r in caplog.records]

    # The capture is not empty: the run's logs and metrics really are in what is searched.
    assert "BytesCopied" in _text(places["metrics (EMF)"])
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert any(r.name.startswith("botocore") for r in caplog.records)
    assert 'copied"' in out or any(r.getMessage() == "copied" for r in caplog.records)

    found = {place: form for place, value in places.items() for form in forms if form in _text(value)}
    assert found == {}, f"the token leaked into: {sorted(found)}"


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
