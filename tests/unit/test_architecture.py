"""The shape of the domain package: seven stages that never import each other, a contract on the ground floor, and
handlers that load only what their stage needs (a CheckImport cold start must not pay for the Hub client or the
transfer engine)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "modelferry"
STAGES = ("plan", "copy", "validate", "queue", "import_", "verify", "notify")
HEAVY = ("huggingface_hub", "httpx", "modelferry.transfer", "modelferry.validation")


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; `from x import y` counts as x and x.y)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_stage_modules_are_the_seven_boxes_of_the_diagram() -> None:
    present = {p.stem for p in (PACKAGE / "stages").glob("*.py")} - {"__init__"}
    assert present == set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_never_imports_another_stage(stage: str) -> None:
    imported = _imports(PACKAGE / "stages" / f"{stage}.py")
    others = {f"modelferry.stages.{other}" for other in STAGES if other != stage} | {"modelferry.stages"}
    assert not imported & others


def test_the_ground_floor_imports_no_stage_adapter_or_engine() -> None:
    for module in ("contract", "errors", "request", "naming", "selection", "openai_chat"):
        imported = _imports(PACKAGE / f"{module}.py")
        upstairs = {name for name in imported if name.startswith(("modelferry.stages", "modelferry.adapters"))}
        assert not upstairs, module
        assert not any(name.startswith(("boto", "httpx", "huggingface_hub")) for name in imported), module


def test_adapters_and_the_engine_never_reach_up_into_a_stage() -> None:
    for path in [*(PACKAGE / "adapters").glob("*.py"), *(PACKAGE / "transfer").glob("*.py")]:
        assert not any(name.startswith("modelferry.stages") for name in _imports(path)), path.name


def _loaded_by(handler_module: str) -> set[str]:
    """The modules a fresh interpreter holds after importing a handler, with tracing on as in Lambda (the
    Powertools Tracer patches libraries when it is created, which can import them)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "functions"),
        "AWS_LAMBDA_FUNCTION_NAME": "modelferry-test",  # Powertools traces only inside Lambda
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "false",
    }
    code = f"import json, sys; import {handler_module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(  # noqa: S603 - this interpreter, this repository's code
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "handler",
    [
        "join_import_queue",
        "release_import_slot",
        "clean_up_import_queue",
        "check_import",
        "start_import",
        "verify_model",
        "notify",
    ],
)
def test_the_import_verify_and_notify_handlers_load_no_hub_client_and_no_engine(handler: str) -> None:
    loaded = _loaded_by(f"modelferry.handlers.{handler}")
    assert f"modelferry.handlers.{handler}" in loaded
    heavy = sorted(name for name in loaded if name.startswith(HEAVY))
    assert heavy == []


def test_the_copy_handler_does_load_the_engine_so_the_check_above_can_fail() -> None:
    loaded = _loaded_by("modelferry.handlers.copy_file")
    assert {"httpx", "huggingface_hub", "modelferry.transfer.engine"} <= loaded


HANDLERS = sorted(p.stem for p in (PACKAGE / "handlers").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("handler", HANDLERS)
def test_no_handler_loads_the_boto3_type_stubs(handler: str) -> None:
    # mypy-boto3-* are development requirements only: imported outside `if TYPE_CHECKING:`, a handler would pass
    # here with them installed and fail in Lambda, so any of them loaded at run time fails.
    loaded = _loaded_by(f"modelferry.handlers.{handler}")
    assert f"modelferry.handlers.{handler}" in loaded
    assert sorted(name for name in loaded if name.startswith("mypy_boto3")) == []
