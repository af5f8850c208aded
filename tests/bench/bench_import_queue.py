"""Import queue benchmark: one batch of models started at once, imported through the queue and through the retry
loop modelferry had before it (StartImport retrying ServiceQuotaExceededException with back-off and jitter).

Both contenders run the same batch (small generated GPT-OSS-shaped models, the same names) on a fresh local rig each:
moto's interpreter running the definition, the real handlers, one Bedrock emulator with its one-job quota. Waits and
Retry intervals are simulated (recorded, not slept). The retry loop is today's definition with the queue taken out:
ValidateInS3 goes straight to StartImport, and the job's end goes straight to VerifyModel.

Per model it reports the Lambda invocations, the state transitions (states entered) and the Bedrock import calls;
for the batch the wall time, the failures and the order of the imports against the order the runs were started.

Not named test_*: pytest must not collect it. `python tests/bench/bench_import_queue.py --help` for the options.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelferry.request import ImportRequest
from modelferry_cli.local.batch import BatchReport, run_batch
from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import LocalRig

REPO = "bench/queue-gpt-oss-tiny"
QUEUE_STATES = ("JoinImportQueue", "ImportQueueWaitTimedOut", "QueueFailed", "ReleaseImportSlot")


def without_queue(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition as it was before the import queue: every run goes to StartImport and retries the quota."""
    changed = copy.deepcopy(definition)
    states = changed["States"]
    states["ValidateInS3"]["Next"] = "StartImport"
    states["UseExistingModel"]["Next"] = "VerifyModel"
    for choice in states["IsImportComplete"]["Choices"]:
        if choice["Next"] == "ReleaseImportSlot":
            choice["Next"] = "VerifyModel"
    for name in QUEUE_STATES:
        del states[name]
    return changed


def run_contender(
    hub: LocalHub,
    names: list[str],
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None,
    settings: dict[str, str],
) -> BatchReport:
    behaviour = EmulatorBehaviour(imported_models_quota=len(names) + 5)
    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour, settings=settings, definition_transform=transform) as rig:
        return run_batch(rig, [ImportRequest(repo_id=REPO, model_name=name) for name in names], timeout=3600)


def summary(label: str, batch: BatchReport, started_order: list[str]) -> dict[str, Any]:
    runs = batch.runs
    in_order = [name for name in started_order if name in batch.import_order]
    return {
        "contender": label,
        "models": len(runs),
        "succeeded": batch.succeeded,
        "failed": {run.model_name: run.report.error for run in runs if run.status != "SUCCEEDED"},
        "wall_seconds": round(batch.wall_seconds, 1),
        "lambda_invocations_per_model": round(batch.per_model("lambda_invocations"), 1),
        "state_transitions_per_model": round(batch.per_model("state_transitions"), 1),
        "bedrock_import_calls_per_model": round(batch.per_model("bedrock_import_calls"), 1),
        "max_state_transitions": max(run.state_transitions for run in runs),
        "quota_refusals": sum(run.quota_refusals for run in runs),
        "lambda_invocations_by_function": dict(sorted(batch.lambda_invocations.items())),
        "imports_in_start_order": batch.import_order == in_order,
        "median_lambda_invocations": statistics.median(run.lambda_invocations for run in runs),
        # Runs that failed stopped early: the figures of the runs that went the whole way compare like with like.
        "per_succeeded_model": _means([run for run in runs if run.status == "SUCCEEDED"]),
    }


def _means(runs: list[Any]) -> dict[str, float] | None:
    if not runs:
        return None
    fields = ("lambda_invocations", "state_transitions", "bedrock_import_calls", "quota_refusals")
    return {name: round(statistics.mean(getattr(run, name) for run in runs), 1) for name in fields}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=30, help="models in the batch (default: %(default)s)")
    parser.add_argument(
        "--contender", choices=["queue", "retry", "both"], default="both", help="what to run (default: %(default)s)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--quota-wait-seconds",
        default="86400",
        help="ImportQuotaWaitSeconds for both (default: the parameter's maximum, %(default)s, so the retry loop "
        "is measured rather than cut short)",
    )
    args = parser.parse_args(argv)
    names = [f"bench-model-{index:02d}" for index in range(args.models)]
    settings = {"IMPORT_QUOTA_WAIT_SECONDS": args.quota_wait_seconds}
    results = []
    with LocalHub() as hub:
        hub.add_repo(REPO, gpt_oss_repo(num_shards=1, include_metal=False, include_original=False))
        contenders: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]] | None]] = []
        if args.contender in {"queue", "both"}:
            contenders.append(("queue", None))
        if args.contender in {"retry", "both"}:
            contenders.append(("retry loop", without_queue))
        for label, transform in contenders:
            batch = run_contender(hub, names, transform, settings)
            # Both start the executions in list order; the queue's tickets say in which order they reached it.
            results.append(summary(label, batch, batch.queue_order() if transform is None else names))
            print(json.dumps(results[-1], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
