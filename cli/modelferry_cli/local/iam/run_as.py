"""`python -m modelferry_cli.local.iam.run_as PRINCIPAL SPEC_FILE MODULE`: run MODULE as `__main__` with every boto3
call evaluated as PRINCIPAL (the local Fargate copy task runs this way, as its task role)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from modelferry_cli.local.iam.guard import enforce_in_this_process


def main(argv: list[str]) -> None:
    principal, spec_file, module = argv
    enforce_in_this_process(principal, Path(spec_file).read_text())
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
