"""Each principal's identity policy statements, read from template.yaml and resolved with the local stack's names.

Principals are the template's logical ids: every `AWS::Serverless::Function` (its `Policies`: inline policy
documents; a SAM policy template or managed policy name is refused, none is used), every `AWS::IAM::Role` (its
`Policies` plus the `AWS::IAM::RolePolicy`/`AWS::IAM::Policy` resources attached to it: StateMachineRole gets
StateMachineSelfPolicy). Intrinsics resolved: Ref (parameters, pseudo parameters, resources), Fn::GetAtt,
Fn::Sub (both forms), Fn::If / Fn::Equals / Fn::Not / Fn::And / Fn::Or / Condition, AWS::NoValue. A resource
with a `Condition` that is false for the local stack has no statements (its principal does not exist).

Not modelled: the managed policies SAM attaches to every function role (AWSLambdaBasicExecutionRole for logs,
AWSXrayWriteOnlyAccess with Tracing: Active): the code makes no such call through boto3; logs and traces leave
through the Lambda runtime and the X-Ray daemon.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelferry_cli.local.iam.policy import UnsupportedPolicy, check_statement

_NO_VALUE = object()


@dataclass(frozen=True)
class StackNames:
    """What the local stack calls things: the values intrinsics resolve to."""

    parameters: Mapping[str, str]  # parameter name -> value (every parameter; defaults filled in)
    pseudo: Mapping[str, str]  # AWS::Region, AWS::AccountId, AWS::Partition, AWS::StackName, ...
    refs: Mapping[str, str]  # logical id -> what Ref returns
    attributes: Callable[[str, str], str]  # (logical id, attribute) -> what Fn::GetAtt returns


class Resolver:
    def __init__(self, template: Mapping[str, Any], names: StackNames) -> None:
        self._template = template
        self._names = names
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self._template["Conditions"][name]))
        return self._conditions[name]

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            intrinsic = self._intrinsics().get(key)
            if intrinsic:
                return intrinsic(arg)
            if key.startswith("Fn::"):
                raise UnsupportedPolicy(f"{key} is not resolved by the rig")
        resolved = {key: self.value(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def _intrinsics(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": lambda arg: self._names.attributes(*arg),
            "Fn::Sub": self._sub,
            "Fn::If": lambda arg: self.value(arg[1] if self.condition(arg[0]) else arg[2]),
            "Fn::Equals": lambda arg: str(self.value(arg[0])) == str(self.value(arg[1])),
            "Fn::Not": lambda arg: not self.value(arg[0]),
            "Fn::And": lambda arg: all(self.value(a) for a in arg),
            "Fn::Or": lambda arg: any(self.value(a) for a in arg),
            "Condition": self.condition,
            "Fn::Condition": self.condition,  # the !Condition short form, as the rig's loader reads it
        }

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._names.pseudo:
            return self._names.pseudo[name]
        if name in self._names.parameters:
            return self._names.parameters[name]
        return self._names.refs[name]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._names.attributes(*name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)


def _documents(resolver: Resolver, resource: Mapping[str, Any]) -> list[Any]:
    """The resource's policy documents, resolved (a policy under a false Fn::If is gone)."""
    props = resource.get("Properties", {})
    policies = resolver.value(props.get("Policies", []))
    if resource["Type"] == "AWS::Serverless::Function":
        for policy in policies:
            if not (isinstance(policy, dict) and "Statement" in policy):
                raise UnsupportedPolicy(f"SAM policy templates and managed policies are not modelled: {policy!r}")
        return list(policies)
    if props.get("ManagedPolicyArns"):
        raise UnsupportedPolicy("managed policies are not modelled")
    return [policy["PolicyDocument"] for policy in policies]


def _statements_of(documents: list[Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for document in documents:
        for statement in document.get("Statement", []):
            check_statement(statement)
            statements.append(statement)
    return statements


def _role_owner(resources: Mapping[str, Any], role: Any) -> str | None:
    """The principal a `Ref` to a role names: the role itself, or the SAM function whose generated role it is (SAM
    names a function's generated role `<Function>Role`, "AWS::Serverless::Function" generated resources)."""
    if not (isinstance(role, dict) and set(role) == {"Ref"}):
        return None
    name = str(role["Ref"])
    function = name.removesuffix("Role")
    generated = (
        name.endswith("Role")
        and resources.get(function, {}).get("Type") == "AWS::Serverless::Function"
        and "Role" not in resources[function].get("Properties", {})
    )
    return function if generated else name


def principal_statements(template: Mapping[str, Any], names: StackNames) -> dict[str, list[dict[str, Any]]]:
    """Logical id -> the resolved statements of every function and role the local stack has."""
    resolver = Resolver(template, names)
    resources = template["Resources"]
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] not in {"AWS::Serverless::Function", "AWS::IAM::Role"}:
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        found[logical_id] = _statements_of(_documents(resolver, resource))
    for resource in resources.values():
        if resource["Type"] not in {"AWS::IAM::RolePolicy", "AWS::IAM::Policy"}:
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        props = resource["Properties"]
        roles = [props["RoleName"]] if "RoleName" in props else props.get("Roles", [])
        for role in roles:
            owner = _role_owner(resources, role)
            if owner in found:
                found[owner].extend(_statements_of([resolver.value(props["PolicyDocument"])]))
            else:
                raise UnsupportedPolicy(f"a policy attached to {role!r}: only a Ref to a role is modelled")
    return found
