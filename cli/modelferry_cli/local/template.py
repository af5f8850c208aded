"""Read template.yaml the way the local rig needs it: functions, their handlers and environment variable names,
and the state machine's definition substitutions. CloudFormation short tags (!Ref, !GetAtt, !Sub...) become
plain mappings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> {"handler": "pkg.module.handler", "environment": {NAME: value}, "timeout": seconds,
    "memory_size": MiB} for every SAM function (Globals first, the function's own properties over them; Lambda's
    defaults, 3 s and 128 MB, where neither says)."""
    global_props = template.get("Globals", {}).get("Function", {})
    globals_env = global_props.get("Environment", {}).get("Variables", {})
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
        found[logical_id] = {
            "handler": props["Handler"],
            "environment": env,
            "timeout": int(props.get("Timeout", global_props.get("Timeout", 3))),
            "memory_size": int(props.get("MemorySize", global_props.get("MemorySize", 128))),
        }
    return found


def state_machine(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the one Step Functions state machine."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::StateMachine":
            return logical_id, resource["Properties"]
    raise LookupError("template.yaml declares no AWS::Serverless::StateMachine")
