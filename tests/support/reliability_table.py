"""The tables of docs/reliability.md, filled in by the reliability suite as it runs.

Each fault case adds a row from what its run really did (final status, where it failed, error, retries seen);
the load test adds its figures. `MF_FAULT_TABLE=docs/reliability.md pytest tests/reliability` rewrites the parts of
that file between the `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` markers; without the variable
nothing is written, so `make test` never touches the tree.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from modelferry_cli.local.rig import ExecutionReport

_FAULT_ROWS: list[tuple[str, str, str, str, str, str, str]] = []
_SECTIONS: dict[str, str] = {}


def add_fault_row(
    case: str, layer: str, fault: str, report: ExecutionReport, handled_by: str, *, open_uploads: int
) -> None:
    subject = report.notifications[0]["subject"] if report.notifications else ""
    stage = subject.partition("FAILED at ")[2].partition(" (")[0] if "FAILED at" in subject else "-"
    retried = Counter(
        result["errorType"]
        for _, _, result in report.lambda_calls
        if isinstance(result, dict) and "errorType" in result
    )
    seen = ", ".join(f"{name} x{count}" for name, count in retried.items()) or "none"
    outcome = report.status + (f" `{report.error}`" if report.error else "")
    s3_state = "verified only" + ("" if open_uploads == 0 else f", {open_uploads} open upload (lifecycle rule)")
    _FAULT_ROWS.append((layer, fault, outcome, stage, seen, handled_by, s3_state + f" <sub>{case}</sub>"))


def set_section(name: str, markdown: str) -> None:
    _SECTIONS[name] = markdown.strip() + "\n"


def fault_table() -> str:
    header = "| layer | fault injected | final status | failed at | task errors seen | handled by | S3 after |\n"
    header += "|---|---|---|---|---|---|---|\n"
    return header + "".join("| " + " | ".join(row) + " |\n" for row in _FAULT_ROWS)


def write_if_asked() -> Path | None:
    target = os.environ.get("MF_FAULT_TABLE")
    if not target:
        return None
    sections = dict(_SECTIONS)
    if _FAULT_ROWS:
        sections["faults"] = fault_table()
    path = Path(target)
    text = path.read_text()
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.DOTALL)
        text, found = pattern.subn(lambda m, body=body: m.group(1) + body + m.group(2), text)
        if not found:
            raise RuntimeError(f"{path} has no <!-- generated:{name} --> section")
    path.write_text(text)
    return path


def rows() -> list[Any]:
    return list(_FAULT_ROWS)
