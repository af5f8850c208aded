"""`modelferry run-local` without the `local` extra: one line saying what to install, exit status 2."""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from modelferry_cli import run_local
from modelferry_cli.local import extra
from modelferry_cli.main import build_parser

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_without_moto_run_local_says_what_to_install_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # import moto now raises ImportError, find_spec finds nothing

    def no_rig(**_: object) -> None:
        raise AssertionError("the rig must not start without the local extra")

    monkeypatch.setattr(run_local, "LocalRig", no_rig)
    out = io.StringIO()

    status = run_local.run(build_parser().parse_args(["run-local"]), out)

    assert status == 2
    assert out.getvalue() == extra.INSTALL_HINT + "\n"
    assert extra.INSTALL_HINT == "modelferry run-local needs the local extra: pip install 'modelferry[local]'"


def test_the_cli_starts_and_answers_with_the_hint_when_no_extra_module_can_be_imported() -> None:
    """A fresh interpreter in which every module of the extra fails to import, as after a bare `pip install .`."""
    blocked = ", ".join(repr(name) for name in extra.REQUIRED_MODULES)
    script = (
        "import sys\n"
        f"for name in ({blocked},):\n"
        "    sys.modules[name] = None\n"
        "from modelferry_cli.main import main\n"
        "sys.exit(main(['run-local', '--json']))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{REPO_ROOT / 'functions'}:{REPO_ROOT / 'cli'}", "PATH": "/usr/bin:/bin"},
    )

    assert (done.returncode, done.stdout, done.stderr) == (2, extra.INSTALL_HINT + "\n", "")


def test_every_module_the_guard_checks_comes_with_the_local_extra() -> None:
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["local"]
    provided = {Requirement(spec).name.lower() for spec in declared}
    for spec in declared:  # and what those requirements bring with the extras named
        requirement = Requirement(spec)
        for dependency in requires(requirement.name) or []:
            needed = Requirement(dependency)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in requirement.extras):
                provided.add(needed.name.lower().replace("_", "-"))
    distributions = packages_distributions()

    for module in extra.REQUIRED_MODULES:
        owners = {name.lower().replace("_", "-") for name in distributions[module]}
        assert owners & provided, f"{module} comes from {owners}, which the local extra does not bring"
    assert {"moto", "numpy", "pyyaml"} <= provided
