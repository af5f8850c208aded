"""The three ways to start, and following a run.

- The EventBridge rules in template.yaml match the documented events (events/) and not their near misses,
  checked with moto's event-pattern matcher.
- Through moto (LocalRig: the rules from template.yaml on moto's default bus, the bucket's object events sent to
  EventBridge, the real definition and handlers): a custom event starts one execution with its detail as input; a
  request file starts one execution per listed model, none when an entry is invalid, none twice for one version.
- `modelferry start` finds the state machine from the stack's outputs; `modelferry watch` follows a real local
  execution (its output is what the README shows); `status` and `list` report a failure with what to do.
- Every file in events/ is used by a test.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.events.models import EventPattern

from modelferry.request import parse_request
from modelferry_cli import watch_view
from modelferry_cli.local import events_capture
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import generic_repo, gpt_oss_repo
from modelferry_cli.local.moto_patches import FakeLambdaContext, resolve_handler
from modelferry_cli.local.rig import BUCKET, REGION, LocalRig
from modelferry_cli.local.template import load_template
from modelferry_cli.main import main
from tests.support.worker_steps import hold_until

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]


def _event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def _pattern(rule: str, bucket: str = BUCKET) -> EventPattern:
    """The rule's EventPattern from template.yaml, with the stack's bucket (an Fn::If) resolved to `bucket`."""

    def resolve(node: Any) -> Any:
        if isinstance(node, dict) and "Fn::If" in node:
            return bucket
        if isinstance(node, dict):
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return EventPattern.load(json.dumps(resolve(RESOURCES[rule]["Properties"]["EventPattern"])))


def _with(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `event` with one dotted field replaced."""
    copy = json.loads(json.dumps(event))
    *parents, leaf = path.split(".")
    node = copy
    for part in parents:
        node = node[part]
    node[leaf] = value
    return copy


# --- the rules' patterns ------------------------------------------------------------------------------------------
def test_custom_event_rule_matches_the_documented_event_and_not_near_misses() -> None:
    pattern = _pattern("ImportRequestRule")
    documented = _event("eventbridge-import-request.json")
    assert pattern.matches_event(documented)
    assert documented["detail"] == _event("execution-input-minimal.json")
    near_misses = [
        _with(documented, "source", "modelferry.request"),
        _with(documented, "source", "Modelferry.requests"),
        _with(documented, "source", "modelferry"),  # the outcome events' source: an outcome never starts an import
        _with(documented, "detail-type", "ModelImportRequest"),
        _with(documented, "detail-type", "modelimportrequested"),
        _with(documented, "detail-type", "ModelImportSucceeded"),
        {key: value for key, value in documented.items() if key != "detail-type"},
    ]
    assert [pattern.matches_event(event) for event in near_misses] == [False] * len(near_misses)


def test_request_file_rule_matches_the_documented_s3_event_and_not_near_misses() -> None:
    documented = _event("s3-request-file-created.json")
    bucket = documented["detail"]["bucket"]["name"]
    pattern = _pattern("RequestFileRule", bucket)
    assert pattern.matches_event(documented)
    assert pattern.matches_event(_with(documented, "detail.object.key", "requests/team-a/llama.json"))
    near_misses = {
        "models/gpt-oss-20b/abc/config.json": _with(
            documented, "detail.object.key", "models/gpt-oss-20b/abc/config.json"
        ),
        "requests/x.txt": _with(documented, "detail.object.key", "requests/med-gpt-oss-20b.txt"),
        "requests.json": _with(documented, "detail.object.key", "requests.json"),
        "Requests/x.json": _with(documented, "detail.object.key", "Requests/med-gpt-oss-20b.json"),
        "archive/requests/x.json": _with(documented, "detail.object.key", "archive/requests/x.json"),
        "requests/x.json.bak": _with(documented, "detail.object.key", "requests/x.json.bak"),
        "another bucket": _with(documented, "detail.bucket.name", "someone-elses-bucket"),
        "Object Deleted": _with(documented, "detail-type", "Object Deleted"),
        "not from S3": _with(documented, "source", "modelferry.requests"),
    }
    assert {name: pattern.matches_event(event) for name, event in near_misses.items()} == dict.fromkeys(
        near_misses, False
    )
    # The outcome files written beside a request match too (EventBridge cannot AND two filters on one field);
    # the function ignores them: see test_a_request_file_starts_one_execution_per_listed_model.
    assert pattern.matches_event(_with(documented, "detail.object.key", "requests/x.json.result.json"))


def test_the_request_file_trigger_is_least_privilege() -> None:
    props = RESOURCES["StartFromRequestFileFunction"]["Properties"]
    assert props["Handler"] == "modelferry.handlers.start_from_request_file.handler"
    statements = props["Policies"][0]["Statement"]
    unconditional = [s for s in statements if "Effect" in s]
    granted = {
        (tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))): s for s in unconditional
    }
    assert set(granted) == {("s3:GetObject", "s3:PutObject"), ("s3:ListBucket",), ("states:StartExecution",)}
    s3_resource = granted[("s3:GetObject", "s3:PutObject")]["Resource"]["Fn::Sub"][0]
    assert s3_resource == "arn:${AWS::Partition}:s3:::${Bucket}/requests/*"
    # Listing, so that a deleted request file reads as 404 (not 403): the bucket itself, no object.
    assert granted[("s3:ListBucket",)]["Resource"]["Fn::Sub"][0] == "arn:${AWS::Partition}:s3:::${Bucket}"
    assert granted[("states:StartExecution",)]["Resource"] == {"Ref": "ModelImportStateMachine"}
    conditional = [s for s in statements if "Fn::If" in s]
    assert [c["Fn::If"][0] for c in conditional] == ["HasKmsKey"]
    (target,) = RESOURCES["RequestFileRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["StartFromRequestFileFunction", "Arn"]}
    permission = RESOURCES["RequestFileRulePermission"]["Properties"]
    assert permission["SourceArn"] == {"Fn::GetAtt": ["RequestFileRule", "Arn"]}
    assert permission["Principal"] == "events.amazonaws.com"
    assert props["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {"Ref": "ModelImportStateMachine"}


# --- through moto ---------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _metrics_start_and_end_empty(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handlers share one Powertools Metrics; with metrics disabled (as in the rig) it never flushes, so values
    pile up over a session until the 100th of one metric is serialized, which fails without a namespace. Leave
    nothing behind for the next test (tests/reliability/conftest.py does the same)."""
    from modelferry.adapters.observability import metrics

    monkeypatch.setattr(metrics, "namespace", metrics.namespace or "Modelferry")
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as local_hub:
        for entry in _event("request-file-multi.json")["requests"]:
            local_hub.add_repo(entry["repo_id"], gpt_oss_repo())
        local_hub.add_repo("acme/phi3-mini", generic_repo("phi3", ["Phi3ForCausalLM"]))
        yield local_hub


@pytest.fixture
def rig(hub: LocalHub) -> Iterator[LocalRig]:
    with LocalRig(hf_endpoint=hub.url) as local_rig:
        yield local_rig


def _executions(rig: LocalRig) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.list_executions(stateMachineArn=rig.state_machine_arn)["executions"]


@pytest.mark.workflow
def test_a_custom_event_starts_one_execution_with_its_detail_as_input(rig: LocalRig) -> None:
    documented = _event("eventbridge-import-request.json")
    entry = {"Source": documented["source"], "DetailType": documented["detail-type"]}
    outcome_event = {"Source": "modelferry", "DetailType": "ModelImportSucceeded", "Detail": "{}"}
    boto3.client("events", region_name=REGION).put_events(
        Entries=[{**entry, "Detail": json.dumps(documented["detail"])}, outcome_event]
    )

    (delivery,) = rig.deliver_trigger_events()

    assert delivery.rule == "ImportRequestRule"
    report = rig.wait(delivery.result)
    assert report.status == "SUCCEEDED", report.cause
    assert report.input == documented["detail"]
    assert len(_executions(rig)) == 1


@pytest.mark.workflow
def test_a_request_file_starts_one_execution_per_listed_model(rig: LocalRig) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    body = (EVENTS / "request-file-multi.json").read_bytes()
    entries = json.loads(body)["requests"]
    s3.put_object(Bucket=BUCKET, Key="requests/batch.json", Body=body)

    deliveries = rig.deliver_trigger_events()

    assert [(d.rule, d.result["status"]) for d in deliveries] == [
        ("RequestFileRule", "started"),
        ("RequestFileRule", "ignored"),  # its own requests/batch.json.result.json
    ]
    started = deliveries[0].result["executions"]
    reports = [rig.wait(execution["execution_arn"]) for execution in started]
    assert [r.status for r in reports] == ["SUCCEEDED"] * len(entries), [r.cause for r in reports]
    assert [r.input for r in reports] == entries
    assert len({r.imported_model_arn for r in reports}) == len(entries)
    result = json.loads(s3.get_object(Bucket=BUCKET, Key="requests/batch.json.result.json")["Body"].read())
    assert [e["execution_arn"] for e in result["executions"]] == [r.execution_arn for r in reports]

    # The same event again (EventBridge delivers at least once), and the same bytes uploaded again: no new execution.
    handler = resolve_handler(RESOURCES["StartFromRequestFileFunction"]["Properties"]["Handler"])
    again = handler(deliveries[0].event, FakeLambdaContext("StartFromRequestFileFunction"))
    s3.put_object(Bucket=BUCKET, Key="requests/batch.json", Body=body)
    (reupload,) = [d.result for d in rig.deliver_trigger_events() if d.result["status"] != "ignored"]
    assert [e["execution_arn"] for e in again["executions"]] == [r.execution_arn for r in reports]
    assert [e["execution_arn"] for e in reupload["executions"]] == [r.execution_arn for r in reports]
    assert {e["status"] for e in again["executions"] + reupload["executions"]} == {"already_started"}
    assert len(_executions(rig)) == len(entries)


@pytest.mark.workflow
def test_a_request_file_with_one_invalid_entry_starts_nothing_and_says_why(rig: LocalRig) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    document = _event("request-file-multi.json")
    document["requests"][1]["model_name"] = "med gpt oss"
    s3.put_object(Bucket=BUCKET, Key="requests/batch.json", Body=json.dumps(document).encode())

    deliveries = rig.deliver_trigger_events()

    assert [d.result["status"] for d in deliveries] == ["rejected", "ignored"]
    assert _executions(rig) == []
    error = json.loads(s3.get_object(Bucket=BUCKET, Key="requests/batch.json.error.json")["Body"].read())
    (problem,) = error["problems"]
    assert problem.startswith("requests[1]: model_name: must be 1-63 characters")


# --- the CLI against local runs ---------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _HoldFirstPlan:
    """Keeps the execution in Plan until the watcher has drawn its first frame, so the first frame is a running
    execution whatever the machine's speed (no timing in the test). Plan runs in the rig's worker: it asks the test
    process before it starts (tests/support/worker_steps.py)."""

    def __init__(self, rig: LocalRig, monkeypatch: pytest.MonkeyPatch) -> None:
        self.released = threading.Event()
        hold_until(rig, "PlanFunction", self.released)

        class _Time:
            @staticmethod
            def sleep(seconds: float) -> None:
                self.released.set()
                threading.Event().wait(seconds)

        monkeypatch.setattr(watch_view, "time", _Time)


def _stack_for(rig: LocalRig, name: str = "modelferry-local") -> str:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"StateMachineArn": {"Value": rig.state_machine_arn}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


@pytest.mark.workflow
def test_watch_follows_a_local_run_stage_by_stage(
    rig: LocalRig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _HoldFirstPlan(rig, monkeypatch)
    request = _event("execution-input-minimal.json")
    arn = rig.start(request, name="watch-demo")

    status = main(["watch", arn, "--plain", "--interval", "0.02"])

    out = capsys.readouterr().out
    print(out, file=sys.stderr)  # shown with -rA; the README's "Watch it" block is this output
    report = rig.wait(arn)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].endswith(f"watching watch-demo ({arn})")
    order = [
        "Plan started",
        "Plan done in",
        "Copy started",
        "Copy done in",
        "Validate done in",
        "Import started",
        "Import done in",
        "Verify done in",
        "Notify done in",
    ]
    positions = [next(i for i, line in enumerate(lines) if f"  {text}" in line) for text in order]
    assert positions == sorted(positions)
    state = report.state
    assert state is not None
    assert state.plan is not None
    assert state.import_ is not None
    manifest = state.plan.manifest
    copied = {line.split("copied ", 1)[1].rsplit(" (", 1)[0] for line in lines if "  copied " in line}
    assert len(copied) == manifest.file_count
    total = watch_view.human_bytes(manifest.total_bytes)
    assert any(f"Copy {manifest.file_count}/{manifest.file_count} files" in line for line in lines)
    assert any(f"100%  {total} of {total}" in line for line in lines)
    assert any(f"Import {state.import_.job_name}: Completed" in line for line in lines)
    summary = out.split("\n\n", 1)[1]
    assert re.search(r"^  ok  Plan .*10 files", summary, re.MULTILINE)
    assert f"  model    {report.imported_model_arn}" in summary
    assert "  result   SUCCEEDED in" in summary
    _assert_readme_shows(summary)


def _assert_readme_shows(summary: str) -> None:
    """The README's captured example has the stage rows and outcome lines this run printed (values differ)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Watch it", 1)[1].split("\n## ", 1)[0]
    (block,) = [b for b in section.split("```")[1::2] if "  watching " in b]

    def shape(text: str) -> list[str]:
        return [line.split()[1] for line in text.splitlines() if re.match(r"^  (ok|>>|\.\.|!!)  ", line)] + [
            line.split()[0] for line in text.splitlines() if re.match(r"^  (result|model|reply) ", line)
        ]

    assert shape(summary), "the run printed no stage rows"
    assert shape(block) == shape(summary)
    assert "  copied config.json" in block


@pytest.mark.workflow
def test_watch_redraws_in_place_on_a_terminal(rig: LocalRig, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelferry_cli.main import build_parser

    _HoldFirstPlan(rig, monkeypatch)
    arn = rig.start(_event("execution-input-minimal.json"))
    args = build_parser().parse_args(["watch", arn, "--interval", "0.02"])
    terminal = _Terminal()

    status = args.func(args, terminal)

    frames = re.split(r"\x1b\[(\d+)F\x1b\[J", terminal.getvalue())
    first, final = frames[0], frames[-1]
    assert status == 0
    assert "  RUNNING  " in first.splitlines()[0]
    assert "result" not in first
    assert int(frames[1]) == len(first.splitlines())  # the cursor goes back exactly over the previous frame
    assert "  SUCCEEDED  " in final.splitlines()[0]
    assert [line.split()[0] for line in final.splitlines() if re.match(r"^  (ok|>>|\.\.|!!)  ", line)] == ["ok"] * 7
    assert "  result   SUCCEEDED in" in final


@pytest.mark.workflow
def test_start_finds_the_machine_from_the_stack_and_watches_to_the_end(
    rig: LocalRig, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _stack_for(rig)
    minimal = _event("execution-input-minimal.json")

    arguments = ["--repo", minimal["repo_id"], "--name", minimal["model_name"], "--stack", stack, "--revision", "main"]

    status = main(["start", *arguments, "--watch", "--plain", "--interval", "0.02"])

    out = capsys.readouterr().out
    assert status == 0
    (execution,) = _executions(rig)
    assert out.startswith(f"Started  {execution['name']}\n         {execution['executionArn']}\n")
    assert execution["name"].startswith(f"{minimal['model_name']}-")
    assert "  result   SUCCEEDED in" in out
    described = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == {**minimal, "revision": "main"}


@pytest.mark.workflow
def test_status_and_list_show_a_failure_with_what_to_do(rig: LocalRig, capsys: pytest.CaptureFixture[str]) -> None:
    stack = _stack_for(rig)
    report = rig.run({"repo_id": "acme/phi3-mini", "model_name": "phi3-mini"}, name="phi3-attempt")
    assert report.status == "FAILED"

    status = main(["status", "phi3-attempt", "--stack", stack])
    listed = main(["list", "--stack", stack])

    out = capsys.readouterr().out
    assert (status, listed) == (1, 0)
    assert re.search(r"^  !!  Plan ", out, re.MULTILINE)
    assert "  result   FAILED at Plan after" in out
    assert "ModelNotImportable" in out
    assert "  next     Bedrock would refuse this model" in out
    (row,) = [line for line in out.splitlines() if "phi3-mini" in line and "FAILED" in line]
    assert "ModelNotImportable: " in row


@pytest.mark.workflow
def test_status_and_list_show_a_run_whose_input_is_not_an_object(
    rig: LocalRig, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plan refuses such an input; every state after it still holds it as the request, and the CLI reads them."""
    stack = _stack_for(rig)
    report = rig.run(["not", "an", "object"], name="list-input")  # type: ignore[arg-type]
    assert (report.status, report.error) == ("FAILED", "InvalidRequest")

    status = main(["status", "list-input", "--stack", stack, "--json"])
    listed = main(["list", "--stack", stack, "--json"])

    first, second = capsys.readouterr().out.splitlines()
    snap, (row,) = json.loads(first), json.loads(second)
    assert (status, listed) == (1, 0)
    assert (snap["failed_stage"], snap["error"]) == ("plan", "InvalidRequest")
    assert [(s["name"], s["state"]) for s in snap["stages"]] == [("Plan", "failed"), ("Notify", "done")]
    assert (row["name"], row["status"], row["model_name"]) == ("list-input", "FAILED", None)
    assert row["outcome"].startswith("InvalidRequest: ")


# --- events/ -------------------------------------------------------------------------------------------------------
# Files other than the captured per-function payloads (tests/workflow/test_events.py), and a test using each.
TRIGGER_AND_INPUT_FILES = {
    "eventbridge-import-request.json": [
        "test_custom_event_rule_matches_the_documented_event_and_not_near_misses",
        "test_a_custom_event_starts_one_execution_with_its_detail_as_input",
    ],
    "s3-request-file-created.json": ["test_request_file_rule_matches_the_documented_s3_event_and_not_near_misses"],
    "request-file-multi.json": ["test_a_request_file_starts_one_execution_per_listed_model"],
    "request-file-single.json": [],  # tests/unit/test_request_files.py (parsing, and the handler with the S3 event)
    "execution-input-minimal.json": ["test_watch_follows_a_local_run_stage_by_stage"],
    "execution-input-full.json": [],  # tests/unit/test_cli_schema.py (a schema example, valid for parse_request)
}


def test_every_file_in_events_is_used_by_a_test() -> None:
    captured = set(events_capture.FILES.values()) | {events_capture.FAILED_NOTIFY_FILE}
    on_disk = {path.name for path in EVENTS.glob("*")}
    assert on_disk == captured | set(TRIGGER_AND_INPUT_FILES), "a file in events/ that no test reads, or one missing"
    sources = "\n".join(path.read_text() for path in (ROOT / "tests").rglob("test_*.py"))
    module = sys.modules[__name__]
    for name, tests in TRIGGER_AND_INPUT_FILES.items():
        assert sources.count(name) >= 2, f"events/{name} is read by no test but this list"
        for test in tests:
            assert name in inspect.getsource(getattr(module, test)), f"{test} does not read events/{name}"
    for name in TRIGGER_AND_INPUT_FILES:
        payload = _event(name)
        if name.startswith(("execution-input", "request-file-single")):
            parse_request(payload)  # every sample input is a valid request
