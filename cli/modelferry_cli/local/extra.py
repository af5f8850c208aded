"""What `modelferry run-local` needs beyond the base install: the `local` extra (pyproject.toml).

`pip install modelferry` ships the rig but not moto, so without this check a run-local outside the development
virtualenv would end in an ImportError from deep inside the rig.
"""

from __future__ import annotations

import importlib.util
from typing import TextIO

INSTALL_HINT = "modelferry run-local needs the local extra: pip install 'modelferry[local]'"

# Top-level modules the rig imports lazily, each provided by the `local` extra: moto with its server and Step Functions
# interpreter (flask, antlr4, jsonpath_ng come with moto[server]) and numpy for the generated model. yaml (the
# template) is imported as the CLI starts; huggingface_hub already brings it, the extra names it too.
REQUIRED_MODULES = ("moto", "flask", "antlr4", "jsonpath_ng", "numpy")


def missing_modules() -> list[str]:
    """The required modules this interpreter cannot import, without importing any of them."""
    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ValueError:  # a module in sys.modules with no spec
            found = False
        if not found:
            missing.append(name)
    return missing


def check_installed(out: TextIO) -> bool:
    """True if run-local can start; otherwise print one line saying what to install."""
    if missing_modules():
        print(INSTALL_HINT, file=out)
        return False
    return True
