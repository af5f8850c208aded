"""Bad input through the real first state: hypothesis makes up malformed execution inputs and each one runs
through the real definition on the local rig. Plan must refuse it with InvalidRequest naming the field, before any
side effect: not one S3 object, not one request to the Hub, no other task run; the failure is notified. The same
holds when the request comes as an EventBridge event (the rule starts the state machine with the event's detail);
a malformed request file starts nothing at all and says why in `<file>.error.json`.

The properties of the rules themselves (thousands of inputs, no rig) are in tests/unit/test_input_properties.py.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, LocalRig
from tests.support.local_run import cause_message, keys, s3

pytestmark = pytest.mark.workflow

REPO = "acme/gpt-oss-tiny"
VALID = {"repo_id": REPO, "model_name": "gpt-oss-tiny"}

malformed = st.one_of(
    st.tuples(
        st.just("repo_id"),
        st.sampled_from(["../acme/x", "acme/../x", "/acme/x", "acme", "acme/x/y", "acme\\x", "ac me/x", "acme/x\n"]),
    ),
    st.tuples(st.just("model_name"), st.sampled_from(["../x", "a/b", "a..b", "m" * 64, "", "naïve", "a b", "a.b"])),
    st.tuples(st.just("revision"), st.sampled_from(["../main", "/main", "a//b", "main/", "..", "ma in", "\x00"])),
    st.tuples(
        st.sampled_from(["include", "exclude"]),
        st.sampled_from([["/etc/*"], ["../*"], ["a/../b"], ["a b"], ["$(x)"], ["x" * 300], ["*"] * 65, "*.json"]),
    ),
    st.tuples(st.just("verify_max_tokens"), st.sampled_from([0, -1, 10**9, "many", None])),
    st.tuples(st.text(alphabet=string.ascii_lowercase + "_", min_size=3, max_size=12), st.just("x")),  # unknown
)


@pytest.fixture(scope="module")
def module_hub() -> Iterator[LocalHub]:
    with LocalHub() as hub:
        hub.add_repo(REPO, gpt_oss_repo())
        yield hub


@pytest.fixture(scope="module")
def module_rig(module_hub: LocalHub) -> Iterator[LocalRig]:
    """One rig for every example: each bad input must leave it as empty as it found it."""
    with LocalRig(hf_endpoint=module_hub.url) as rig:
        yield rig


@settings(
    max_examples=15,
    deadline=None,
    # the module's rig and hub are shared on purpose: side effects of one example would show in the next
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=malformed)
def test_malformed_input_is_refused_by_the_first_state_before_any_side_effect(
    module_rig: LocalRig, module_hub: LocalHub, case: tuple[str, Any]
) -> None:
    field, bad = case
    if field not in VALID and field not in {"revision", "include", "exclude", "verify_max_tokens"}:
        field = f"x_{field}"  # an unknown field
    calls_before, hub_requests_before, keys_before = len(module_rig.lambda_calls), len(module_hub.requests), keys()

    report = module_rig.run({**VALID, field: bad})

    assert report.status == "FAILED"
    assert report.error == "InvalidRequest"
    assert cause_message(report).startswith(f"{field}:") or f"; {field}:" in cause_message(report)
    assert [s.name for s in report.states] == ["ReceiveRequest", "Plan", "PlanFailed", "NotifyFailure", "ImportFailed"]
    calls = module_rig.lambda_calls[calls_before:]
    # The execution's own tasks; then the import queue's cleanup, which every failed run's status change reaches,
    # finds nothing to give back (this run never reached the queue).
    assert [name for name, _, _ in calls] == ["PlanFunction", "NotifyFunction", "CleanUpImportQueueFunction"]
    assert calls[-1][2] == {"released": False, "next_execution": None}
    assert keys() == keys_before  # not one object written
    assert len(module_hub.requests) == hub_requests_before
    (notification,) = report.notifications
    assert "FAILED at Plan" in notification["subject"]  # SNS subjects are cut at 100 characters
    assert "InvalidRequest" in notification["message"]
    assert f"{field}:" in notification["message"]
    assert [(e["detail"]["stage"], e["detail"]["error"]) for e in report.events] == [("Plan", "InvalidRequest")]


NOT_OBJECTS = [["acme/x"], "acme/x", 42]


@pytest.mark.parametrize("payload", NOT_OBJECTS, ids=["array", "string", "number"])
def test_an_input_that_is_not_an_object_fails_before_any_side_effect(
    module_rig: LocalRig, module_hub: LocalHub, payload: Any
) -> None:
    calls_before, hub_requests_before, keys_before = len(module_rig.lambda_calls), len(module_hub.requests), keys()

    report = module_rig.run(payload)  # type: ignore[arg-type]

    assert report.status == "FAILED", json.dumps(payload)
    assert [(name, result.get("errorType")) for name, _, result in module_rig.lambda_calls[calls_before:]] == [
        ("PlanFunction", "InvalidRequest"),
        ("NotifyFunction", None),
        ("CleanUpImportQueueFunction", None),  # the failed run's status change: nothing to give back
    ]
    assert keys() == keys_before
    assert len(module_hub.requests) == hub_requests_before


@pytest.mark.parametrize("payload", NOT_OBJECTS, ids=["array", "string", "number"])
def test_an_input_that_is_not_an_object_is_refused_by_name_and_notified(module_rig: LocalRig, payload: Any) -> None:
    report = module_rig.run(payload)  # type: ignore[arg-type]

    assert report.error == "InvalidRequest"
    assert "execution input: must be a JSON object" in cause_message(report)
    assert len(report.notifications) == 1


# --- the two triggers: an EventBridge event, a request file ---------------------------------------------------------


def _executions(rig: LocalRig) -> list[str]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=rig.state_machine_arn)
    return [execution["executionArn"] for page in pages for execution in page["executions"]]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed)
def test_a_malformed_eventbridge_request_is_refused_by_the_first_state(
    module_rig: LocalRig, module_hub: LocalHub, case: tuple[str, Any]
) -> None:
    field, bad = case
    if field not in VALID and field not in {"revision", "include", "exclude", "verify_max_tokens"}:
        field = f"x_{field}"
    hub_requests_before, keys_before = len(module_hub.requests), keys()
    boto3.client("events", region_name=REGION).put_events(
        Entries=[
            {
                "Source": "modelferry.requests",
                "DetailType": "ModelImportRequested",
                "Detail": json.dumps({**VALID, field: bad}),
            }
        ]
    )

    (delivery,) = module_rig.deliver_trigger_events()
    report = module_rig.wait(delivery.result)

    assert delivery.rule == "ImportRequestRule"
    assert report.status == "FAILED"
    assert report.error == "InvalidRequest"
    assert cause_message(report).startswith(f"{field}:") or f"; {field}:" in cause_message(report)
    assert [s.name for s in report.states] == ["ReceiveRequest", "Plan", "PlanFailed", "NotifyFailure", "ImportFailed"]
    assert keys() == keys_before
    assert len(module_hub.requests) == hub_requests_before


request_files = st.one_of(
    st.binary(min_size=1, max_size=64).filter(lambda b: not b.strip().startswith(b"{")),  # not JSON, or not an object
    st.just(b'{"requests": []}'),
    st.just(b'{"requests": {"repo_id": "acme/x"}}'),
    st.just(json.dumps({"requests": [VALID], "bucket": "elsewhere"}).encode()),
    st.just(json.dumps({"requests": [VALID] * 51}).encode()),
    st.just(json.dumps({"requests": [VALID, VALID]}).encode()),  # one model name twice
    st.just(json.dumps({"requests": [VALID], "pad": "x" * 300_000}).encode()),  # larger than an execution input
    malformed.map(lambda case: json.dumps({"requests": [VALID, {**VALID, "model_name": "b", case[0]: case[1]}]})).map(
        str.encode
    ),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=request_files, name=st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True))
def test_a_malformed_request_file_starts_nothing_and_says_why_beside_it(
    module_rig: LocalRig, module_hub: LocalHub, body: bytes, name: str
) -> None:
    executions_before, hub_requests_before = _executions(module_rig), len(module_hub.requests)
    key = f"requests/{name}.json"
    keys_before = set(keys()) - {key, f"{key}.error.json"}
    s3().put_object(Bucket=BUCKET, Key=key, Body=body)

    deliveries = module_rig.deliver_trigger_events()

    outcomes = [d.result for d in deliveries if d.result.get("status") != "ignored"]
    assert [o["status"] for o in outcomes] == ["rejected"], outcomes
    assert outcomes[0]["problems"]
    error = json.loads(s3().get_object(Bucket=BUCKET, Key=f"{key}.error.json")["Body"].read())
    assert error["problems"] == outcomes[0]["problems"]
    assert _executions(module_rig) == executions_before
    assert set(keys()) - keys_before == {key, f"{key}.error.json"}  # the file and what it says, nothing else
    assert len(module_hub.requests) == hub_requests_before
