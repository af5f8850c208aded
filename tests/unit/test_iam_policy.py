"""The rig's IAM evaluator: IAM's evaluation rules on the statements template.yaml uses, and their resolution."""

from __future__ import annotations

from typing import Any

import pytest

from modelferry_cli.local.iam.policy import Decision, Request, UnsupportedPolicy, evaluate
from modelferry_cli.local.iam.template_policies import Resolver, StackNames, principal_statements
from modelferry_cli.local.template import load_template
from tests.unit.test_template import ROOT

BUCKET = "arn:aws:s3:::bucket"


def _allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Sid": "A", "Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _decide(statements: list[dict[str, Any]], action: str, resource: str, **context: str) -> Decision:
    return evaluate(statements, Request(action, resource, context)).decision


def test_an_allow_is_needed() -> None:
    statements = [_allow("s3:GetObject", f"{BUCKET}/models/*")]
    assert _decide(statements, "s3:GetObject", f"{BUCKET}/models/a") is Decision.ALLOWED
    assert _decide(statements, "s3:PutObject", f"{BUCKET}/models/a") is Decision.IMPLICIT_DENY
    assert _decide(statements, "s3:GetObject", f"{BUCKET}/runs/a") is Decision.IMPLICIT_DENY
    assert _decide([], "s3:GetObject", f"{BUCKET}/models/a") is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    statements = [
        _allow("s3:*", "*"),
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"{BUCKET}/*"},
        _allow("s3:DeleteObject", f"{BUCKET}/models/*"),
    ]
    verdict = evaluate(statements, Request("s3:DeleteObject", f"{BUCKET}/models/a"))
    assert (verdict.decision, verdict.statement_id) == (Decision.EXPLICIT_DENY, "NoDeletes")
    assert _decide(statements, "s3:GetObject", f"{BUCKET}/models/a") is Decision.ALLOWED


def test_action_wildcards_ignore_case_resource_wildcards_do_not() -> None:
    statements = [_allow("S3:get*", "arn:aws:s3:::bucket/Models/?.json")]
    assert _decide(statements, "s3:GetObject", "arn:aws:s3:::bucket/Models/a.json") is Decision.ALLOWED
    assert _decide(statements, "s3:GetObject", "arn:aws:s3:::bucket/models/a.json") is Decision.IMPLICIT_DENY
    assert _decide(statements, "s3:GetObject", "arn:aws:s3:::bucket/Models/ab.json") is Decision.IMPLICIT_DENY
    # Regular-expression characters in a pattern are literal: "." does not match any character.
    assert _decide(statements, "s3:GetObject", "arn:aws:s3:::bucket/Models/aXjson") is Decision.IMPLICIT_DENY


def test_not_action_and_not_resource() -> None:
    statements = [{"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": f"{BUCKET}/secret/*"}]
    assert _decide(statements, "s3:GetObject", f"{BUCKET}/models/a") is Decision.ALLOWED
    assert _decide(statements, "s3:DeleteObject", f"{BUCKET}/models/a") is Decision.IMPLICIT_DENY
    assert _decide(statements, "s3:GetObject", f"{BUCKET}/secret/a") is Decision.IMPLICIT_DENY


def test_a_listing_is_allowed_only_under_the_granted_prefix() -> None:
    statements = [_allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["runs/", "runs/*"]}})]
    assert _decide(statements, "s3:ListBucket", BUCKET, **{"s3:prefix": "runs/x/copy-failures/"}) is Decision.ALLOWED
    assert _decide(statements, "s3:ListBucket", BUCKET, **{"s3:prefix": "models/"}) is Decision.IMPLICIT_DENY
    # No prefix at all: the key is missing from the context, so StringLike is false (not an error, not an allow).
    assert _decide(statements, "s3:ListBucket", BUCKET) is Decision.IMPLICIT_DENY


def test_an_allow_whose_condition_fails_is_not_a_deny() -> None:
    """moto's evaluator turns it into a Deny; IAM treats the statement as not applying."""
    statements = [
        _allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": "runs/*"}}),
        _allow("s3:ListBucket", BUCKET),
    ]
    assert _decide(statements, "s3:ListBucket", BUCKET, **{"s3:prefix": "models/"}) is Decision.ALLOWED


def test_pass_role_only_to_the_named_service() -> None:
    role = "arn:aws:iam::123456789012:role/import"
    statements = [
        _allow("iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}})
    ]
    assert _decide(statements, "iam:PassRole", role, **{"iam:PassedToService": "bedrock.amazonaws.com"}) is (
        Decision.ALLOWED
    )
    assert _decide(statements, "iam:PassRole", role, **{"iam:PassedToService": "ecs-tasks.amazonaws.com"}) is (
        Decision.IMPLICIT_DENY
    )
    assert _decide(statements, "iam:PassRole", role) is Decision.IMPLICIT_DENY


def test_arn_conditions_compare_part_by_part_and_condition_keys_ignore_case() -> None:
    cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/copy"
    statements = [_allow("ecs:RunTask", "*", Condition={"ArnEquals": {"ecs:cluster": cluster}})]
    assert _decide(statements, "ecs:RunTask", "td", **{"ECS:Cluster": cluster}) is Decision.ALLOWED
    assert _decide(statements, "ecs:RunTask", "td", **{"ecs:cluster": cluster + "2"}) is Decision.IMPLICIT_DENY
    like = [_allow("ecs:RunTask", "*", Condition={"ArnLike": {"ecs:cluster": "arn:aws:ecs:*:*:cluster/*"}})]
    assert _decide(like, "ecs:RunTask", "td", **{"ecs:cluster": cluster}) is Decision.ALLOWED
    assert _decide(like, "ecs:RunTask", "td", **{"ecs:cluster": "not-an-arn"}) is Decision.IMPLICIT_DENY


def test_if_exists_and_negated_operators_on_a_missing_key() -> None:
    statements = [_allow("kms:Decrypt", "*", Condition={"StringEqualsIfExists": {"kms:ViaService": "s3.x"}})]
    assert _decide(statements, "kms:Decrypt", "k") is Decision.ALLOWED
    assert _decide(statements, "kms:Decrypt", "k", **{"kms:ViaService": "sns.x"}) is Decision.IMPLICIT_DENY
    deny = [
        _allow("*", "*"),
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:x": "1"}}},
    ]
    assert _decide(deny, "s3:GetObject", "r") is Decision.EXPLICIT_DENY  # StringNotEquals is true on a missing key
    assert _decide(deny, "s3:GetObject", "r", **{"aws:x": "1"}) is Decision.ALLOWED


def test_kms_grants_apply_to_the_key_they_name() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1111"
    statements = [_allow(["kms:GenerateDataKey", "kms:Decrypt"], key)]
    assert _decide(statements, "kms:Decrypt", key) is Decision.ALLOWED
    assert _decide(statements, "kms:GenerateDataKey", key.replace("1111", "2222")) is Decision.IMPLICIT_DENY
    assert _decide(statements, "kms:Encrypt", key) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    "statement",
    [
        _allow("s3:GetObject", "*", Condition={"NumericLessThan": {"s3:max-keys": "10"}}),
        _allow("s3:GetObject", "*", Condition={"ForAnyValue:StringLike": {"aws:TagKeys": "a*"}}),
        _allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*"),
        {**_allow("s3:GetObject", "*"), "Principal": "*"},
    ],
)
def test_what_is_not_modelled_is_refused_not_misjudged(statement: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate([statement], Request("s3:GetObject", "arn:aws:s3:::b/u/k", {"s3:max-keys": "5"}))


# --- template.yaml resolved -----------------------------------------------------------------------------------------
def _names(**parameters: str) -> StackNames:
    template = load_template(ROOT / "template.yaml")
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(parameters)
    return StackNames(
        parameters=values,
        pseudo={
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::StackName": "s",
        },
        refs={
            "ModelBucket": "the-bucket",
            "ModelImportStateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
            "NotificationTopic": "arn:aws:sns:us-east-1:123456789012:t",
            "OutcomeEventBus": "bus",
            "CopyTaskDefinition": "arn:td",
            "CopyTaskCluster": "c",
        },
        attributes=lambda logical_id, attribute: f"<{logical_id}.{attribute}>",
    )


def test_the_template_resolves_to_plain_statements_with_the_stacks_names() -> None:
    template = load_template(ROOT / "template.yaml")
    found = principal_statements(template, _names())
    plan = {s["Sid"]: s for s in found["PlanFunction"]}
    assert plan["WriteRunRecords"]["Resource"] == "arn:aws:s3:::the-bucket/modelferry-runs/*"
    assert "UseBucketKey" not in plan
    assert "ReadHubToken" not in plan
    machine = {s["Sid"] for s in found["StateMachineRole"]}
    assert {"InvokeStageFunctions", "StartChildWorkflows"} <= machine  # StateMachineSelfPolicy is attached
    assert "CopyTaskRole" not in found  # Condition: HasCopyTask is false


def test_conditions_switch_the_key_and_copy_task_grants_on() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    template = load_template(ROOT / "template.yaml")
    found = principal_statements(template, _names(KmsKeyArn=key, CopyTaskImageUri="x/y:1"))
    (use_key,) = [s for s in found["CopyFileFunction"] if s.get("Sid") == "UseBucketKey"]
    assert use_key["Resource"] == key
    assert "CopyTaskRole" in found
    assert any(s.get("Sid") == "PassCopyTaskRoles" for s in found["StateMachineRole"])


def test_sub_resolves_variables_attributes_and_pseudo_parameters() -> None:
    template = {"Conditions": {}, "Resources": {}}
    resolver = Resolver(template, _names())
    assert resolver.value({"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::Region}:${Fn.Arn}:${RunsPrefix}"}) == (
        "arn:aws:x:us-east-1:<Fn.Arn>:modelferry-runs/"
    )
    assert resolver.value({"Fn::Sub": ["${A}/${B}", {"A": {"Ref": "ModelBucket"}, "B": "b"}]}) == "the-bucket/b"
    assert resolver.value([{"Ref": "AWS::NoValue"}, "kept"]) == ["kept"]
