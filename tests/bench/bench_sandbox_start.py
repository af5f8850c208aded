"""What a Lambda worker of the local rig costs to start (`python tests/bench/bench_sandbox_start.py`).

The rig forks each worker from a fork server that has imported the heavy libraries once
(`modelferry_cli.local.zygote`). This measures, on this machine, the medians of:
- a cold worker answering a tiny handler (fork, environment, pipe; no project code);
- a warm invocation of that worker;
- a cold worker importing a real handler (`modelferry.handlers.check_import`), as every rig worker does once;
- a fresh interpreter importing the same libraries and handler: what a worker would cost without the fork server.
Not named test_*: pytest must not collect it. Absolute numbers depend on the machine's load: compare runs made on the
same machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from modelferry_cli.local.sandbox import FunctionConfig, SandboxPool

ROUNDS = 7
ENVIRONMENT = {"AWS_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "modelferry", "POWERTOOLS_TRACE_DISABLED": "true"}
SAME_IMPORTS = (
    "import boto3, pydantic, aws_lambda_powertools.logging, aws_lambda_powertools.metrics, "
    "aws_lambda_powertools.tracing, huggingface_hub, httpx; import modelferry.handlers.check_import"
)


def _pool(work_dir: Path) -> SandboxPool:
    return SandboxPool(
        work_dir=work_dir,
        endpoint_environment=lambda _: {},
        on_report=lambda *_: None,
        on_ask=lambda *_: None,
        on_caller=lambda *_: None,
    )


def _config(function: str, handler: str) -> FunctionConfig:
    return FunctionConfig(function, handler, ENVIRONMENT, 60, 512, None)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    work_dir = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    tiny = "tests.support.sandbox_handlers.count"
    real = "modelferry.handlers.check_import.handler"  # fails on the empty event, after its import: what is timed
    pool = _pool(work_dir)
    pool.invoke(_config("Warmup", tiny), {})  # starts the fork server
    cold, warm, cold_real = [], [], []
    for n in range(ROUNDS):
        cold.append(_timed(lambda n=n: pool.invoke(_config(f"Tiny{n}", tiny), {})))
        warm.append(_timed(lambda n=n: pool.invoke(_config(f"Tiny{n}", tiny), {})))
        cold_real.append(_timed(lambda n=n: pool.invoke(_config(f"Real{n}", real), {})))
    pool.close()
    command = [sys.executable, "-c", SAME_IMPORTS]
    fresh = [_timed(lambda: subprocess.run(command, check=True)) for _ in range(ROUNDS)]  # noqa: S603
    for label, seconds in (
        ("cold worker, tiny handler", cold),
        ("warm invocation, tiny handler", warm),
        ("cold worker importing check_import", cold_real),
        ("fresh interpreter, same imports", fresh),
    ):
        print(f"{label:38} median {statistics.median(seconds) * 1000:6.0f} ms  (min {min(seconds) * 1000:.0f})")


if __name__ == "__main__":
    main()
