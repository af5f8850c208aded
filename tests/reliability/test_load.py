"""Load: ten executions of ten different models started at once on the local rig.

All must end SUCCEEDED, their imports must follow one another (Bedrock runs one import job per Region: the others
wait their turn in the import queue, in the order they reached it, and are never refused), and no execution may
write outside its own prefixes. The
figures of the run go into docs/reliability.md (`MF_FAULT_TABLE=docs/reliability.md pytest tests/reliability`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from modelferry.contract import Manifest
from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import generic_repo, gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, ExecutionReport, LocalRig
from tests.support import reliability_table as table
from tests.support.local_run import assert_only_verified_objects, cause_message, keys, open_uploads, s3

pytestmark = pytest.mark.workflow

MODELS: dict[str, dict[str, bytes]] = {
    "gpt-oss-a": gpt_oss_repo(seed=1),
    "gpt-oss-b": gpt_oss_repo(seed=2, num_shards=2),
    "gpt-oss-c": gpt_oss_repo(seed=3, include_metal=False),
    "gpt-oss-d": gpt_oss_repo(seed=4, num_shards=1),
    "llama-a": generic_repo("llama", ["LlamaForCausalLM"], seed=5),
    "llama-b": generic_repo("llama", ["LlamaForCausalLM"], seed=6, num_shards=2),
    "mistral-a": generic_repo("mistral", ["MistralForCausalLM"], seed=7),
    "mixtral-a": generic_repo("mixtral", ["MixtralForCausalLM"], seed=8),
    "qwen2-a": generic_repo("qwen2", ["Qwen2ForCausalLM"], seed=9),
    "qwen3-a": generic_repo("qwen3", ["Qwen3ForCausalLM"], seed=10),
}


# The rig's simulated clock adds up the Wait/Retry seconds of every execution, and Bedrock's clock (on which the
# handlers measure their ceilings) runs ahead by that sum: with ten executions waiting side by side it runs about
# ten times fast. The ceilings are scaled by the same factor, so each execution gets the budget it has on AWS.
CEILINGS = {
    "IMPORT_QUOTA_WAIT_SECONDS": str(21600 * len(MODELS)),
    "IMPORT_TIMEOUT_SECONDS": str(14400 * len(MODELS)),
    "MODEL_NOT_READY_BUDGET_SECONDS": str(1200 * len(MODELS)),
}


@pytest.fixture
def rig(hub: LocalHub, behaviour: EmulatorBehaviour) -> Iterator[LocalRig]:
    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour, settings=CEILINGS) as local_rig:
        yield local_rig


def test_ten_executions_at_once_all_succeed_with_imports_one_at_a_time(
    hub: LocalHub, rig: LocalRig, behaviour: EmulatorBehaviour
) -> None:
    behaviour.imported_models_quota = len(MODELS)  # an adjustable AWS quota (3 by default): raised for the load run
    commits = {name: hub.add_repo(f"load/{name}", files) for name, files in MODELS.items()}

    began = time.monotonic()
    started = {name: rig.start({"repo_id": f"load/{name}", "model_name": name}) for name in MODELS}
    reports = {name: rig.wait(arn, timeout=600) for name, arn in started.items()}
    wall_seconds = time.monotonic() - began

    assert {name: r.status for name, r in reports.items()} == dict.fromkeys(MODELS, "SUCCEEDED"), {
        name: cause_message(r) for name, r in reports.items() if r.status != "SUCCEEDED"
    }

    # Every execution copied its own commit into its own prefix, verified, and wrote nothing anywhere else.
    manifests = {name: _manifest(report) for name, report in reports.items()}
    allowed = []
    for name, report in reports.items():
        run = report.output["plan"]["run"]
        assert run["commit"] == commits[name]
        assert run["model_prefix"] == f"models/{name}/{commits[name]}/"
        assert run["run_prefix"].startswith(f"modelferry-runs/{name}/")
        state = assert_only_verified_objects(manifests[name])
        assert set(state.verified) == {entry.path for entry in manifests[name].files}
        allowed += [run["model_prefix"], run["run_prefix"]]
    strays = [key for key in keys() if not key.startswith(tuple(allowed))]
    assert strays == []
    assert open_uploads() == []
    for function, event, _ in rig.lambda_calls:
        if function == "CopyFileFunction":
            owner = next(n for n, r in reports.items() if r.output["plan"]["run"]["run_id"] == event["run"]["run_id"])
            assert event["file"]["key"].startswith(manifests[owner].model_prefix)

    # One import job at a time: the others waited in line, in ticket order, and the quota never had to refuse one.
    jobs = sorted(rig.bedrock.jobs, key=lambda job: job.creation_time)
    assert sorted(job.model_name for job in jobs) == sorted(MODELS)
    assert all(job.status == "Completed" for job in jobs)
    assert max_concurrent(jobs) == 1
    refusals = Counter(
        call.params.get("importedModelName")
        for call in rig.bedrock.calls
        if call.operation == "CreateModelImportJob" and call.error == "ServiceQuotaExceededException"
    )
    assert sum(refusals.values()) == 0
    by_ticket = sorted(reports, key=lambda name: reports[name].output["queue"]["ticket"])
    assert [job.model_name for job in jobs] == by_ticket
    assert sorted(r.imported_model_arn for r in reports.values()) == sorted(m.arn for m in rig.bedrock.models)
    assert sorted(e["detail-type"] for r in reports.values() for e in r.events) == ["ModelImportSucceeded"] * 10

    figures = _figures(reports, manifests, jobs, refusals, wall_seconds=wall_seconds, simulated=rig.clock.total_seconds)
    table.set_section("load", figures)


def max_concurrent(jobs: list[Any]) -> int:
    """The most import jobs InProgress at the same moment, from their creation and end times."""
    edges: list[tuple[datetime, int]] = []
    for job in jobs:
        edges += [(job.creation_time, 1), (job.end_time, -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # an end before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def _manifest(report: ExecutionReport) -> Manifest:
    key = report.output["plan"]["manifest"]["manifest_key"]
    return Manifest.model_validate_json(s3().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _figures(
    reports: dict[str, ExecutionReport],
    manifests: dict[str, Manifest],
    jobs: list[Any],
    refusals: Counter[str],
    *,
    wall_seconds: float,
    simulated: float,
) -> str:
    order = {job.model_name: index for index, job in enumerate(jobs, start=1)}
    first = jobs[0].creation_time
    lines = [
        f"- executions: {len(reports)} started at once, {sum(r.status == 'SUCCEEDED' for r in reports.values())} "
        "SUCCEEDED",
        f"- wall time, first start to last end: {wall_seconds:.1f} s (2-core CI machine class; not asserted)",
        f"- simulated waits (Wait states and Retry back-off, recorded not slept, summed over all executions): "
        f"{simulated / 3600:.1f} h; the ceilings were scaled by {len(reports)} for this run (see the test)",
        f"- import jobs: {len(jobs)}, at most 1 InProgress at any moment; quota refusals: "
        f"{sum(refusals.values())} (CreateModelImportJob answered ServiceQuotaExceededException)",
        "- objects outside an execution's own model and run prefixes: 0; open multipart uploads: "
        f"{len(open_uploads())}",
        "",
        "| model | architecture | status | files | bytes | quota refusals | order | job created (+s, emulator) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, report in sorted(reports.items(), key=lambda item: order[item[0]]):
        job = next(j for j in jobs if j.model_name == name)
        manifest = manifests[name]
        lines.append(
            f"| {name} | {job.inspection.architecture} | {report.status} | {len(manifest.files)} | "
            f"{manifest.total_bytes} | {refusals.get(name, 0)} | {order[name]} | "
            f"{(job.creation_time - first).total_seconds():.0f} |"
        )
    return "\n".join(lines)
