"""Copies of template.yaml with one permission taken away, for the tests that prove the rig enforces IAM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelferry_cli.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def _documents(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource["Properties"]
    if resource["Type"] == "AWS::Serverless::Function":
        return list(props["Policies"])
    if resource["Type"] == "AWS::IAM::RolePolicy":
        return [props["PolicyDocument"]]
    return list(props["Policies"])  # each a {PolicyName, PolicyDocument}, or one under Fn::If


def _statements(node: Any) -> list[dict[str, Any]]:
    """Every statement under a document's Statement list, looking inside Fn::If branches."""
    if isinstance(node, dict) and "Fn::If" in node:
        return [s for branch in node["Fn::If"][1:] for s in _statements(branch)]
    if isinstance(node, dict) and "PolicyDocument" in node:
        return _statements(node["PolicyDocument"])
    if isinstance(node, dict) and "Statement" in node:
        return [s for item in node["Statement"] for s in _statements(item)]
    if isinstance(node, dict) and "Effect" in node:
        return [node]
    return []


def template_without(tmp_path: Path, logical_id: str, action: str, *, resource: Any = None) -> Path:
    """template.yaml with `action` removed from every Allow statement of `logical_id`'s policies (or, with
    `resource`, only `resource` removed from the statements allowing `action`). Fails if nothing was removed."""
    template = load_template(ROOT / "template.yaml")
    removed = 0
    for document in _documents(template["Resources"][logical_id]):
        for statement in _statements(document):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] != "Allow" or action not in actions:
                continue
            if resource is None:
                kept = [a for a in actions if a != action]
                statement["Action"] = kept or ["none:NothingLeft"]
                removed += 1
            else:
                listed = statement["Resource"]
                resources = listed if isinstance(listed, list) else [listed]
                kept_resources = [r for r in resources if r != resource]
                removed += len(resources) - len(kept_resources)
                statement["Resource"] = kept_resources
    assert removed, f"{logical_id} has no Allow statement granting {action} ({resource or 'any resource'})"
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path
