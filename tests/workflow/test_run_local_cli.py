"""`modelferry run-local`: exit status and the --json contract."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import generic_repo
from modelferry_cli.main import main

pytestmark = pytest.mark.workflow


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


def test_demo_run_succeeds_and_prints_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)

    status, printed = _run(["run-local", "--json"])

    assert status == 0
    report = json.loads(printed)
    assert report["status"] == "SUCCEEDED"
    assert report["error"] is None
    assert report["s3_uri"].startswith("s3://")
    assert report["imported_model_arn"].startswith("arn:aws:bedrock:")
    assert [n["subject"] for n in report["notifications"]] == ["modelferry: gpt-oss-tiny-demo imported and verified"]


def test_a_failed_run_exits_1_and_the_report_names_the_state_and_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalHub() as hub:
        hub.add_repo("acme/phi3-mini", generic_repo("phi3", ["Phi3ForCausalLM"]))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)

        status, printed = _run(["run-local", "--repo", "acme/phi3-mini", "--name", "phi3-mini"])

    assert status == 1
    assert "x Plan" in printed  # the failed state is marked
    assert "Result:  FAILED (ModelNotImportable: acme/phi3-mini@" in printed
    assert "stackTrace" not in printed
    assert "Notification: modelferry: phi3-mini FAILED at Plan" in printed
    # The text printed is the outcome event's, indented, without the SNS body's JSON details.
    assert "\n  Importing acme/phi3-mini as phi3-mini failed at Plan.\n" in printed
    assert "\n  Next:   Bedrock would refuse this model" in printed
    assert "Details:" not in printed


def test_repo_without_a_hub_is_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)

    status, printed = _run(["run-local", "--repo", "acme/x", "--name", "x"])

    assert status == 2
    assert "HF_ENDPOINT" in printed
