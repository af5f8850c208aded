"""Evaluate identity-based policy statements the way IAM does, for one request.

The rules (IAM user guide, "Policy evaluation logic" and "IAM JSON policy elements"):
- an explicit Deny in any matching statement wins; otherwise an Allow is needed; otherwise the request is implicitly
  denied;
- a statement matches when its Action (or NotAction) matches the action, its Resource (or NotResource) matches the
  resource ARN, and every condition operator in its Condition block is true (operators AND together, the values
  of one key OR together);
- `*` and `?` are wildcards in actions (case-insensitive), resources and the `*Like` operators (case-sensitive);
- a condition on a key absent from the request context is false, except for `...IfExists` operators, `Null`, and
  the negated string operators' documented "not present also matches" (StringNotEquals/StringNotLike are true on a
  missing key).

moto's own `moto.iam.access_control.IAMPolicyStatement` was read and not used: an Allow whose condition fails is
turned into a Deny there (IAM treats it as not applicable), `*` becomes an unescaped regular expression (so `?` and
`.` match wrongly) and actions are compared case-sensitively.

Not modelled (none of them is used by template.yaml's identity policies; a policy that uses one is refused with an
error naming the element, not evaluated wrongly): resource-based policies (bucket, key, topic policies), permission
boundaries, session policies, SCPs, `ForAnyValue:`/`ForAllValues:` set operators, policy variables (`${aws:...}`),
numeric and date operators.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Request:
    """One authorization question: may the principal perform `action` on `resource` with this context?"""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    request: Request
    statement_id: str | None = None  # the Sid of the deciding statement, when it has one

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED


class UnsupportedPolicy(ValueError):
    """The policy uses an element or operator this evaluator does not model."""


_STRING_OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "ArnEquals", "ArnLike"}
_SUPPORTED_OPERATORS = _STRING_OPERATORS | {
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "ArnNotEquals",
    "ArnNotLike",
    "Bool",
    "Null",
}
_SUPPORTED_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _matches_any(patterns: Iterable[str], value: str, *, ignore_case: bool) -> bool:
    return any(_wildcard(p, ignore_case=ignore_case).match(value) for p in patterns)


def _arn_like(pattern: str, arn: str) -> bool:
    """ArnLike compares the six colon-separated ARN parts one by one, each with wildcards (IAM user guide, "ARN
    condition operators"); the resource part keeps any further colons."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:  # arn:partition:service:region:account:resource
        return False
    return all(_wildcard(p, ignore_case=False).match(a) for p, a in zip(pattern_parts, arn_parts, strict=True))


def _operator_true(operator: str, expected: Sequence[str], actual: str | None) -> bool:
    base, if_exists = (operator.removesuffix("IfExists"), operator.endswith("IfExists"))
    if base == "Null":
        return (actual is None) == (str(expected[0]).lower() == "true")
    if actual is None:
        # A missing key fails every positive operator; the negated string and ARN operators are true on it.
        return if_exists or base in {
            "StringNotEquals",
            "StringNotLike",
            "StringNotEqualsIgnoreCase",
            "ArnNotEquals",
            "ArnNotLike",
        }
    checks = {
        "StringEquals": lambda e: e == actual,
        "StringNotEquals": lambda e: e != actual,
        "StringEqualsIgnoreCase": lambda e: e.lower() == actual.lower(),
        "StringNotEqualsIgnoreCase": lambda e: e.lower() != actual.lower(),
        "StringLike": lambda e: bool(_wildcard(e, ignore_case=False).match(actual)),
        "StringNotLike": lambda e: not _wildcard(e, ignore_case=False).match(actual),
        "ArnEquals": lambda e: _arn_like(e, actual),  # ArnEquals and ArnLike behave alike (IAM user guide)
        "ArnLike": lambda e: _arn_like(e, actual),
        "ArnNotEquals": lambda e: not _arn_like(e, actual),
        "ArnNotLike": lambda e: not _arn_like(e, actual),
        "Bool": lambda e: e.lower() == actual.lower(),
    }
    values = [str(e) for e in expected]
    if base.startswith(("StringNot", "ArnNot")):
        return all(checks[base](e) for e in values)  # negated: none of the values may match
    return any(checks[base](e) for e in values)


def _conditions_true(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    lowered = {key.lower(): value for key, value in context.items()}  # condition keys are case-insensitive
    for operator, keys in conditions.items():
        if operator.removesuffix("IfExists") not in _SUPPORTED_OPERATORS:
            raise UnsupportedPolicy(f"condition operator {operator!r} is not modelled by the rig's IAM evaluator")
        for key, expected in keys.items():
            if not _operator_true(operator, _as_list(expected), lowered.get(key.lower())):
                return False
    return True


def check_statement(statement: Mapping[str, Any]) -> None:
    unknown = set(statement) - _SUPPORTED_ELEMENTS
    if unknown:
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r} uses {sorted(unknown)}: not modelled")
    if statement.get("Effect") not in {"Allow", "Deny"}:
        raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: Effect must be Allow or Deny")
    for element in ("Action", "NotAction", "Resource", "NotResource"):
        for value in _as_list(statement.get(element, [])):
            if not isinstance(value, str):
                raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: {element} holds {value!r}")
            if "${" in value:
                raise UnsupportedPolicy(f"statement {statement.get('Sid', '')!r}: policy variables are not modelled")


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not _matches_any(_as_list(statement["Action"]), request.action, ignore_case=True):
            return False
    elif _matches_any(_as_list(statement.get("NotAction", [])), request.action, ignore_case=True):
        return False
    if "Resource" in statement:
        if not _matches_any(_as_list(statement["Resource"]), request.resource, ignore_case=False):
            return False
    elif _matches_any(_as_list(statement.get("NotResource", [])), request.resource, ignore_case=False):
        return False
    return _conditions_true(statement.get("Condition", {}), request.context)


def evaluate(statements: Sequence[Mapping[str, Any]], request: Request) -> Verdict:
    """IAM's decision for `request` under the identity policies' `statements` (all of one principal's policies)."""
    allowed_by: Mapping[str, Any] | None = None
    for statement in statements:
        check_statement(statement)
        if not _applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return Verdict(Decision.EXPLICIT_DENY, request, statement.get("Sid"))
        allowed_by = allowed_by or statement
    if allowed_by is not None:
        return Verdict(Decision.ALLOWED, request, allowed_by.get("Sid"))
    return Verdict(Decision.IMPLICIT_DENY, request)
