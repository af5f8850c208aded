"""Write `events/`: the exact payload the state machine sends each function, captured from a local run.

`python -m modelferry_cli.local.events_capture` regenerates the files; tests/workflow/test_events.py checks that
they still equal what the definition sends and that every handler accepts its file.
"""

from __future__ import annotations

import json
from typing import Any

from modelferry_cli.local.hub import DEMO_REPO_ID, LocalHub
from modelferry_cli.local.model_factory import generic_repo, gpt_oss_repo
from modelferry_cli.local.rig import REPO_ROOT, LocalRig

EVENTS_DIR = REPO_ROOT / "events"
DEMO_REQUEST = {"repo_id": DEMO_REPO_ID, "model_name": "gpt-oss-tiny-demo"}
UNSUPPORTED_REPO_ID = "modelferry-demo/phi3-tiny"
EXECUTION_NAME = "events-capture"

# Function logical id -> events file, for the success run; the failure notification comes from a failing run.
FILES = {
    "PlanFunction": "plan.json",
    "CopyFileFunction": "copy-file.json",
    "ValidateInS3Function": "validate-in-s3.json",
    "JoinImportQueueFunction": "join-import-queue.json",
    "StartImportFunction": "start-import.json",
    "CheckImportFunction": "check-import.json",
    "ReleaseImportSlotFunction": "release-import-slot.json",
    "VerifyModelFunction": "verify-model.json",
    "NotifyFunction": "notify-succeeded.json",
}
FAILED_NOTIFY_FILE = "notify-failed.json"

# Values that differ from run to run (clock, random resource ids); compared as placeholders.
VOLATILE_KEYS = {
    "start_time",
    "started_at",
    "job_arn",
    "model_arn",
    "imported_model_arn",
    "reused_model_arn",
    "latency_ms",
    "sns_message_id",
    "elapsed_seconds",
    "created_at",
    "tokens_per_second",
    "cold_start_seconds",
    "task_token",
    "queued_at",
    "granted_at",
    "waited_seconds",
}


def normalise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("{") and '"stackTrace"' in value:
        # A Lambda error's Cause: its message matters, its stack trace's line numbers move with every edit.
        cause = json.loads(value)
        return {**cause, "stackTrace": "<volatile>"}
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE_KEYS and v is not None else normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


# The Distributed Map starts its children in no fixed order: the copy event is the one for this file.
COPY_EVENT_PATH = "config.json"


def first_payloads(rig: LocalRig) -> dict[str, Any]:
    """The first payload each function received (for the copy function: the one copying COPY_EVENT_PATH)."""
    found: dict[str, Any] = {}
    for function, payload, _ in rig.lambda_calls:
        if function == "CopyFileFunction" and payload.get("file", {}).get("path") != COPY_EVENT_PATH:
            continue
        found.setdefault(function, payload)
    return found


def capture() -> dict[str, Any]:
    """Run the demo (success) and an unsupported model (failure); return file name -> payload."""
    with LocalHub() as hub:
        hub.add_repo(DEMO_REPO_ID, gpt_oss_repo())
        hub.add_repo(UNSUPPORTED_REPO_ID, generic_repo("phi3", ["Phi3ForCausalLM"]))
        with LocalRig(hf_endpoint=hub.url) as rig:
            rig.run(DEMO_REQUEST, name=EXECUTION_NAME)
            payloads = {FILES[f]: p for f, p in first_payloads(rig).items() if f in FILES}
            rig.lambda_calls.clear()
            rig.run({"repo_id": UNSUPPORTED_REPO_ID, "model_name": "phi3-tiny"}, name=f"{EXECUTION_NAME}-failure")
            payloads[FAILED_NOTIFY_FILE] = first_payloads(rig)["NotifyFunction"]
    return payloads


def main() -> None:
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, payload in capture().items():
        (EVENTS_DIR / name).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
