"""events/ holds the exact payload the state machine sends each function (the files `sam local invoke -e` uses):
re-capture them from a local run, compare, and invoke every handler with its file."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelferry_cli.local import events_capture as capture
from modelferry_cli.local.hub import DEMO_REPO_ID, LocalHub
from modelferry_cli.local.model_factory import generic_repo, gpt_oss_repo
from modelferry_cli.local.moto_patches import FakeLambdaContext, resolve_handler
from modelferry_cli.local.rig import LocalRig
from modelferry_cli.local.template import functions, load_template, state_machine

pytestmark = pytest.mark.workflow


def _load(name: str) -> Any:
    return json.loads((capture.EVENTS_DIR / name).read_text())


def _with_live_values(recorded: Any, live: Any) -> Any:
    """The recorded file, with the run-specific ids (clock, random ARNs) of this run swapped in."""
    if isinstance(recorded, dict) and isinstance(live, dict):
        return {
            k: live[k] if k in capture.VOLATILE_KEYS and k in live else _with_live_values(v, live.get(k))
            for k, v in recorded.items()
        }
    if isinstance(recorded, list) and isinstance(live, list) and len(recorded) == len(live):
        return [_with_live_values(r, lv) for r, lv in zip(recorded, live, strict=True)]
    return recorded


def test_every_events_file_is_what_the_state_machine_sends_and_its_handler_accepts_it() -> None:
    template = load_template(capture.REPO_ROOT / "template.yaml")
    handlers = {name: spec["handler"] for name, spec in functions(template).items()}
    _, machine = state_machine(template)
    invoked = {
        value["Fn::GetAtt"][0]
        for value in machine["DefinitionSubstitutions"].values()
        if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in handlers
    }
    assert set(capture.FILES) == invoked, "every function the state machine invokes needs an events file"
    on_disk = {p.name for p in capture.EVENTS_DIR.glob("*.json")}
    assert set(capture.FILES.values()) | {capture.FAILED_NOTIFY_FILE} <= on_disk

    with LocalHub() as hub:
        hub.add_repo(DEMO_REPO_ID, gpt_oss_repo())
        hub.add_repo(capture.UNSUPPORTED_REPO_ID, generic_repo("phi3", ["Phi3ForCausalLM"]))
        with LocalRig(hf_endpoint=hub.url) as rig:
            report = rig.run(capture.DEMO_REQUEST, name=capture.EXECUTION_NAME)
            assert report.status == "SUCCEEDED", report.cause
            live = capture.first_payloads(rig)

            results = {}
            for function, file_name in capture.FILES.items():
                recorded = _load(file_name)
                assert capture.normalise(recorded) == capture.normalise(live[function]), (
                    f"events/{file_name} no longer matches what the state machine sends {function}: "
                    "regenerate with `python -m modelferry_cli.local.events_capture`"
                )
                handler = resolve_handler(handlers[function])
                results[function] = handler(_with_live_values(recorded, live[function]), FakeLambdaContext(function))

            rig.lambda_calls.clear()
            failed = rig.run(
                {"repo_id": capture.UNSUPPORTED_REPO_ID, "model_name": "phi3-tiny"},
                name=f"{capture.EXECUTION_NAME}-failure",
            )
            assert failed.status == "FAILED"
            live_failure = capture.first_payloads(rig)["NotifyFunction"]
            recorded_failure = _load(capture.FAILED_NOTIFY_FILE)
            assert capture.normalise(recorded_failure) == capture.normalise(live_failure)
            failure_result = resolve_handler(handlers["NotifyFunction"])(
                recorded_failure, FakeLambdaContext("NotifyFunction")
            )

    assert results["PlanFunction"]["run"]["commit"] == live["CopyFileFunction"]["run"]["commit"]
    assert results["CopyFileFunction"]["skipped"] is True  # already copied by the run: idempotent
    assert results["ValidateInS3Function"]["verdict"] in {"ok", "fixable"}
    assert results["StartImportFunction"]["job_arn"] == report.output["import"]["job_arn"]  # same token, same job
    assert results["CheckImportFunction"]["status"] == "Completed"
    # The run has ended: a late JoinImportQueue takes no place, a late release has nothing to give back.
    assert results["JoinImportQueueFunction"] == {}
    assert results["ReleaseImportSlotFunction"] == {"released": False, "next_execution": None}
    assert results["VerifyModelFunction"]["finish_reason"]
    assert results["NotifyFunction"]["subject"].endswith("imported and verified")
    assert "FAILED at Plan" in failure_result["subject"]
