"""`modelferry run-local --batch FILE`: several models through one local rig, as a request file would start them.

One Bedrock emulator serves them all, so they share its one import job (the Region's quota) and its import queue: the
report has one line per model and the order in which the imports started.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from modelferry.request import ImportRequest
from modelferry.request_files import InvalidRequestFile, parse_request_file
from modelferry_cli.local.batch import BatchReport, run_batch
from modelferry_cli.watch_view import human_seconds

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def load_batch(path: Path, out: TextIO) -> list[ImportRequest] | None:
    """The file's requests, checked as the request-file trigger checks them; None (and why, printed) if refused."""
    try:
        requests = parse_request_file(path.read_bytes())
    except OSError as exc:
        print(f"--batch {path}: cannot read it: {exc.strerror}", file=out)
        return None
    except InvalidRequestFile as exc:
        print(f"--batch {path}: refused, nothing started:", file=out)
        for problem in exc.problems:
            print(f"  {problem}", file=out)
        return None
    repeated = sorted({r.model_name for r in requests if sum(o.model_name == r.model_name for o in requests) > 1})
    if repeated:
        print(f"--batch {path}: model_name must differ between entries; repeated: {', '.join(repeated)}", file=out)
        return None
    return requests


def run(path: Path, *, as_json: bool, imported_models_quota: int | None, out: TextIO) -> int:
    from modelferry_cli.local.bedrock import EmulatorBehaviour
    from modelferry_cli.local.hub import DEMO_REPO_ID
    from modelferry_cli.local.rig import LocalRig

    requests = load_batch(path, out)
    if requests is None:
        return EXIT_USAGE
    hf_endpoint = os.environ.get("HF_ENDPOINT")
    elsewhere = sorted({r.repo_id for r in requests if r.repo_id != DEMO_REPO_ID})
    if elsewhere and not hf_endpoint:
        print(
            f"--batch: {', '.join(elsewhere)} need HF_ENDPOINT (a Hub to read from); without it only the generated "
            f"demo model {DEMO_REPO_ID} is served",
            file=out,
        )
        return EXIT_USAGE
    # Imported models per account is an adjustable AWS quota (default 3): by default the emulator makes room for the
    # batch, so that what the run shows is the import queue, not that quota.
    behaviour = EmulatorBehaviour(imported_models_quota=imported_models_quota or max(3, len(requests)))
    with LocalRig(hf_endpoint=hf_endpoint, behaviour=behaviour) as rig:
        if not as_json:
            print(f"Batch:   {len(requests)} models from {path}, started at once; one Bedrock emulator", file=out)
        batch = run_batch(rig, requests)
    if as_json:
        print(json.dumps(batch.to_json_dict(), default=str), file=out)
    else:
        print_batch(batch, out)
    return EXIT_OK if batch.succeeded == len(batch.runs) else EXIT_FAILED


def print_batch(batch: BatchReport, out: TextIO) -> None:
    started = {name: index for index, name in enumerate(batch.import_order, start=1)}
    print(f"\n{'MODEL':<32}  {'STATUS':<9}  {'TICKET':>6}  {'IMPORT':>6}  {'WAITED':>14}  ERROR", file=out)
    for run in sorted(batch.runs, key=lambda r: (r.ticket is None, r.ticket or 0)):
        ticket = str(run.ticket) if run.ticket is not None else "-"
        order = f"#{started[run.model_name]}" if run.model_name in started else "-"
        waited = human_seconds(run.waited_seconds) if run.waited_seconds is not None else "-"
        error = f"{run.report.error}" if run.report.error else ""
        print(f"{run.model_name[:32]:<32}  {run.status:<9}  {ticket:>6}  {order:>6}  {waited:>14}  {error}", file=out)
    print(f"\nImports started in this order: {', '.join(batch.import_order) or '(none)'}", file=out)
    print(
        f"Succeeded: {batch.succeeded} of {len(batch.runs)} in {batch.wall_seconds:.1f} s; per model "
        f"{batch.per_model('lambda_invocations'):.1f} Lambda invocations, {batch.per_model('state_transitions'):.1f} "
        f"state transitions, {batch.per_model('bedrock_import_calls'):.1f} Bedrock import calls "
        f"({sum(r.quota_refusals for r in batch.runs)} quota refusals in all)",
        file=out,
    )
