"""template.yaml: the functions match the code, least privilege holds, every log is kept for a bounded time.

cfn-lint, `sam validate --lint` and checkov (in .ci/run) check CloudFormation in general; these tests check what
only this project knows (its handlers, its settings, its bucket prefixes, its Bedrock resources).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from modelferry.adapters import settings as settings_module
from modelferry.request import parse_request
from modelferry_cli.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
FUNCTION = "AWS::Serverless::Function"

# The contract the local rig, the handlers and the docs rely on: the workflow's stage functions (the ones the state
# machine invokes) -> variables each must get. Other functions (triggers) are checked against their settings only.
EXPECTED_ENVIRONMENT = {
    "PlanFunction": {
        "MODEL_BUCKET",
        "MODEL_PREFIX",
        "RUNS_PREFIX",
        "HF_ENDPOINT",
        "HF_TOKEN_SECRET_ARN",
        "IMPORT_ROLE_ARN",
        "IMPORT_POLL_SECONDS",
        "IMPORT_QUEUE_WAIT_SECONDS",
        "LAMBDA_MAX_FILE_BYTES",
        "COPY_TASK_ENABLED",
        "COPY_TASK_SUBNETS",
        "COPY_TASK_SECURITY_GROUPS",
        "COPY_TASK_ASSIGN_PUBLIC_IP",
    },
    "CopyFileFunction": {"MODEL_BUCKET", "HF_ENDPOINT", "HF_TOKEN_SECRET_ARN"},
    "ValidateInS3Function": {"MODEL_BUCKET"},
    "JoinImportQueueFunction": {"IMPORT_QUEUE_TABLE"},
    "StartImportFunction": {"IMPORT_QUOTA_WAIT_SECONDS"},
    "CheckImportFunction": {"IMPORT_TIMEOUT_SECONDS"},
    "ReleaseImportSlotFunction": {"IMPORT_QUEUE_TABLE"},
    "VerifyModelFunction": {"MODEL_NOT_READY_BUDGET_SECONDS"},
    "NotifyFunction": {"TOPIC_ARN", "EVENT_BUS_NAME", "PRICE_PER_CMU_MINUTE", "STORAGE_PRICE_PER_CMU_MONTH"},
}
ALL_FUNCTIONS = sorted(
    name for name, r in load_template(ROOT / "template.yaml")["Resources"].items() if r["Type"] == FUNCTION
)
FIXED_NAME_PROPERTIES = {"FunctionName", "TopicName", "RoleName", "QueueName", "StateMachineName", "BucketName"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="module")
def functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == FUNCTION}


# --- helpers ---------------------------------------------------------------------------------------------------
def statements(node: Any, conditions: tuple[str, ...] = ()) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Every IAM policy statement under `node`, with the names of the Fn::If conditions it sits under."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node, conditions
            return
        if "Fn::If" in node:
            condition, when_true, when_false = node["Fn::If"]
            yield from statements(when_true, (*conditions, condition))
            yield from statements(when_false, conditions)
            return
        for value in node.values():
            yield from statements(value, conditions)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item, conditions)


def strings(node: Any) -> Iterator[str]:
    """Every string in `node`, with a Fn::Sub reduced to its template string."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict) and "Fn::Sub" in node:
        sub = node["Fn::Sub"]
        yield sub if isinstance(sub, str) else sub[0]
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allow_statements(node: Any) -> list[dict[str, Any]]:
    return [s for s, _ in statements(node) if s["Effect"] == "Allow"]


def actions(statement: dict[str, Any]) -> list[str]:
    return list(strings(statement.get("Action", [])))


def settings_class_of(handler: str) -> type[BaseModel] | None:
    """The settings model a handler module loads (`load_settings(X)` in its source), or None."""
    module = importlib.import_module(handler.rsplit(".", 1)[0])
    found = re.findall(r"load_settings\((\w+)\)", inspect.getsource(module))
    assert len(found) <= 1, f"{handler} loads several settings models: {found}"
    return getattr(settings_module, found[0]) if found else None


# Variables the Lambda runtime sets itself ("Using Lambda environment variables", reserved variables): a template
# may not set them, and every function has them.
LAMBDA_RUNTIME_VARIABLES = frozenset({"AWS_REGION"})


def aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias for field in model.model_fields.values() if field.alias} - LAMBDA_RUNTIME_VARIABLES


# --- functions -------------------------------------------------------------------------------------------------
def test_globals_share_one_code_uri_runtime_and_tracing(template: dict[str, Any], functions: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    defaults = template["Globals"]["Function"]
    assert defaults["Runtime"] == "python3.13"
    assert defaults["Architectures"] == ["x86_64"]
    assert defaults["CodeUri"] == "functions/"
    assert defaults["Tracing"] == "Active"
    assert defaults["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "modelferry",
        "POWERTOOLS_METRICS_NAMESPACE": "Modelferry",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    overriding = {name for name, props in functions.items() if {"CodeUri", "Runtime"} & set(props)}
    assert not overriding, f"functions with their own CodeUri/Runtime (SAM would build them separately): {overriding}"


def test_the_state_machine_invokes_the_nine_stage_functions(resources: dict[str, Any]) -> None:
    substitutions = resources["ModelImportStateMachine"]["Properties"]["DefinitionSubstitutions"]
    invoked = {value["Fn::GetAtt"][0] for value in substitutions.values() if "Fn::GetAtt" in value}
    assert {name for name in invoked if resources[name]["Type"] == FUNCTION} == set(EXPECTED_ENVIRONMENT)


@pytest.mark.parametrize("logical_id", ALL_FUNCTIONS)
def test_handler_module_exists_and_has_a_handler(functions: dict[str, Any], logical_id: str) -> None:
    handler = functions[logical_id]["Handler"]
    module_name, attribute = handler.rsplit(".", 1)
    assert (FUNCTIONS_DIR / (module_name.replace(".", "/") + ".py")).is_file(), f"{handler}: not under functions/"
    assert callable(getattr(importlib.import_module(module_name), attribute))


@pytest.mark.parametrize("logical_id", ALL_FUNCTIONS)
def test_every_variable_the_handlers_settings_read_is_set(functions: dict[str, Any], logical_id: str) -> None:
    environment = set(functions[logical_id].get("Environment", {}).get("Variables", {}))
    model = settings_class_of(functions[logical_id]["Handler"])
    needed = aliases(model) if model else set()
    assert needed - environment == set(), f"{logical_id} loads {model.__name__ if model else None}"
    assert EXPECTED_ENVIRONMENT.get(logical_id, set()) - environment == set()


def test_the_settings_lookup_finds_the_models(functions: dict[str, Any]) -> None:
    """Guard for the test above: it must see the four handlers that load settings, or it checks nothing."""
    loaded = {name: settings_class_of(props["Handler"]) for name, props in functions.items()}
    assert loaded["PlanFunction"] is settings_module.PlanSettings
    assert loaded["NotifyFunction"] is settings_module.NotifySettings
    assert sum(model is not None for model in loaded.values()) >= 4


def test_the_copy_task_container_gets_what_the_copy_task_reads(resources: dict[str, Any]) -> None:
    source = (FUNCTIONS_DIR / "modelferry" / "handlers" / "copy_file_on_fargate.py").read_text()
    model = getattr(settings_module, re.findall(r"load_settings\((\w+)\)", source)[0])
    (container,) = resources["CopyTaskDefinition"]["Properties"]["ContainerDefinitions"]
    environment = {variable["Name"] for variable in container["Environment"]}
    assert aliases(model) - environment == set()
    assert container["Name"] == "copy-task"
    assert resources["CopyTaskDefinition"]["Condition"] == "HasCopyTask"


def test_copy_and_long_stages_get_their_time_and_memory(functions: dict[str, Any]) -> None:
    assert functions["PlanFunction"]["Timeout"] == 300
    assert functions["CopyFileFunction"]["Timeout"] == 900
    assert functions["CopyFileFunction"]["MemorySize"] == 3008
    assert functions["ValidateInS3Function"]["Timeout"] == 300
    # VerifyModelFunction's Timeout is checked against its clients' worst case in test_verify_budget.py.


# --- names and logs --------------------------------------------------------------------------------------------
def test_no_fixed_physical_names(resources: dict[str, Any]) -> None:
    """A name property is either absent, a reference to another resource, or derived from the stack name."""

    def fixed(value: Any) -> bool:
        if isinstance(value, dict) and set(value) <= {"Ref", "Fn::GetAtt"}:
            return False  # names another resource of the stack (AWS::IAM::RolePolicy.RoleName)
        return "${AWS::StackName}" not in "".join(strings(value))

    named = [
        f"{name}.{prop}"
        for name, resource in resources.items()
        for prop, value in resource.get("Properties", {}).items()
        if (prop in FIXED_NAME_PROPERTIES or prop == "Name") and fixed(value)
    ]
    assert not named, f"fixed names stop two stacks sharing an account: {named}"
    named_itself = {"AWS::Serverless::Function": "FunctionName", "AWS::SNS::Topic": "TopicName"}
    assert not [n for n, r in resources.items() if named_itself.get(r["Type"]) in r.get("Properties", {})]


def test_every_function_has_a_log_group_with_retention(resources: dict[str, Any], functions: dict[str, Any]) -> None:
    log_groups = {
        "".join(strings(r["Properties"].get("LogGroupName", ""))): r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    for logical_id in functions:
        props = log_groups.get(f"/aws/lambda/${{{logical_id}}}")
        assert props is not None, f"{logical_id} has no log group named /aws/lambda/${{{logical_id}}}"
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_log_group_expires(resources: dict[str, Any]) -> None:
    forever = [
        n
        for n, r in resources.items()
        if r["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in r["Properties"]
    ]
    assert not forever


def test_the_state_machine_logs_to_its_own_group_and_traces(resources: dict[str, Any]) -> None:
    props = resources["ModelImportStateMachine"]["Properties"]
    (destination,) = props["Logging"]["Destinations"]
    logical_id, _ = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"]
    assert resources[logical_id]["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in resources[logical_id]["Properties"]
    assert props["Tracing"] == {"Enabled": True}


# --- least privilege -------------------------------------------------------------------------------------------
def test_the_walker_sees_every_policy(resources: dict[str, Any]) -> None:
    """Guard: the statement walker must reach Lambda, role, bucket and conditional (Fn::If) statements."""
    found = list(statements(resources))
    assert len(found) > 30
    assert any(conditions for _, conditions in found)
    assert allow_statements(resources["StartImportFunction"])


def test_no_action_wildcards(resources: dict[str, Any]) -> None:
    wildcards = [
        (name, action)
        for name, resource in resources.items()
        for statement, _ in statements(resource)
        if statement["Effect"] == "Allow"
        for action in actions(statement)
        if "*" in action
    ]
    assert not wildcards, wildcards


def test_no_allow_with_not_action_or_not_resource(resources: dict[str, Any]) -> None:
    loose = [s for s in allow_statements(resources) if {"NotAction", "NotResource"} & set(s)]
    assert not loose


def test_no_sam_policy_templates_or_managed_policies_on_functions(functions: dict[str, Any]) -> None:
    """SAM policy templates (S3CrudPolicy...) grant whole buckets; every function lists its own statements."""
    for name, props in functions.items():
        for policy in as_list(props.get("Policies", [])):
            assert isinstance(policy, dict), f"{name}: {policy}"
            assert set(policy) <= {"Version", "Statement"}, f"{name}: {sorted(policy)}"


def test_s3_object_access_is_scoped_to_the_model_or_runs_prefix(resources: dict[str, Any]) -> None:
    """Object access only under the model prefix, the runs prefix (or its copy-failures/ records), or requests/
    (the request-file trigger)."""
    allowed_objects = {
        "${Bucket}/${ModelPrefix}*",
        "${Bucket}/${RunsPrefix}*",
        "${Bucket}/${RunsPrefix}*/copy-failures/*",
        "${Bucket}/requests/*",
    }
    seen = []
    for statement in allow_statements(resources):
        for resource in strings(statement.get("Resource", [])):
            if ":s3:::" not in resource:
                continue
            seen.append(resource)
            path = resource.split(":s3:::", 1)[1]
            object_actions = [a for a in actions(statement) if a != "s3:ListBucket"]
            if path == "${Bucket}":
                assert object_actions == [], f"bucket-level resource for object actions: {statement}"
            else:
                assert path in allowed_objects, f"S3 resource outside the prefixes: {resource}"
    assert len(seen) >= 8


def test_only_the_import_role_lists_by_prefix_condition(resources: dict[str, Any]) -> None:
    (listing,) = [s for s in allow_statements(resources["ImportRole"]) if "s3:ListBucket" in actions(s)]
    prefixes = listing["Condition"]["StringLike"]["s3:prefix"]
    assert {"Ref": "ModelPrefix"} in prefixes
    assert {"Fn::Sub": "${ModelPrefix}*"} in prefixes


def test_pass_role_only_for_named_roles_and_only_to_their_service(resources: dict[str, Any]) -> None:
    expected_service = {"StartImportFunction": "bedrock.amazonaws.com", "StateMachineRole": "ecs-tasks.amazonaws.com"}
    found = {}
    for name, resource in resources.items():
        for statement in allow_statements(resource):
            if "iam:PassRole" not in actions(statement):
                continue
            assert actions(statement) == ["iam:PassRole"], statement
            for target in as_list(statement["Resource"]):
                role_id, attribute = target["Fn::GetAtt"]
                assert (resources[role_id]["Type"], attribute) == ("AWS::IAM::Role", "Arn")
            assert "StringEquals" in statement.get("Condition", {}), f"{name}: iam:PassRole without a condition"
            found[name] = statement["Condition"]["StringEquals"]["iam:PassedToService"]
    assert found == expected_service
    (start_import,) = [s for s in allow_statements(resources["StartImportFunction"]) if "iam:PassRole" in actions(s)]
    assert start_import["Resource"] == {"Fn::GetAtt": ["ImportRole", "Arn"]}


def test_bedrock_actions_are_scoped_to_import_jobs_and_imported_models(resources: dict[str, Any]) -> None:
    """Only List actions (which take no resource ARN) may use "*", and they must stand alone in their statement."""
    bedrock_statements = [s for s in allow_statements(resources) if any(a.startswith("bedrock:") for a in actions(s))]
    assert len(bedrock_statements) >= 4
    for statement in bedrock_statements:
        targets = list(strings(statement["Resource"]))
        if targets == ["*"]:
            assert all(a.startswith("bedrock:List") for a in actions(statement)), statement
            continue
        assert targets, statement
        for target in targets:
            assert re.search(
                r":bedrock:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(model-import-job|imported-model)/\*$", target
            ), target


def test_secret_access_only_when_a_secret_is_given(resources: dict[str, Any]) -> None:
    found = 0
    for statement, conditions in statements(resources):
        if "secretsmanager:GetSecretValue" in actions(statement):
            found += 1
            assert statement["Resource"] == {"Ref": "HfTokenSecretArn"}
            assert any("HfToken" in condition for condition in conditions), conditions
    assert found >= 2


def test_import_role_trusts_bedrock_jobs_of_this_account_only(resources: dict[str, Any]) -> None:
    (trust,) = resources["ImportRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    source_arn = "".join(strings(trust["Condition"]["ArnLike"]["aws:SourceArn"]))
    assert source_arn.endswith(":bedrock:${AWS::Region}:${AWS::AccountId}:model-import-job/*")
    granted = {a for s in allow_statements(resources["ImportRole"]["Properties"]["Policies"]) for a in actions(s)}
    assert granted == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}


def test_state_machine_can_run_its_distributed_map_and_nothing_else_of_step_functions(
    resources: dict[str, Any],
) -> None:
    granted = {
        action: statement["Resource"]
        for statement in allow_statements(resources["StateMachineSelfPolicy"])
        for action in actions(statement)
    }
    assert granted["states:StartExecution"] == {"Ref": "ModelImportStateMachine"}
    assert "${ModelImportStateMachine.Name}/*" in "".join(strings(granted["states:DescribeExecution"]))
    assert set(granted) == {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"}


def test_state_machine_invokes_exactly_the_nine_stage_functions(resources: dict[str, Any]) -> None:
    (invoke,) = [s for s in allow_statements(resources["StateMachineRole"]) if "lambda:InvokeFunction" in actions(s)]
    assert {target["Fn::GetAtt"][0] for target in invoke["Resource"]} == set(EXPECTED_ENVIRONMENT)


def test_ecs_permissions_exist_only_with_the_copy_task(resources: dict[str, Any]) -> None:
    ecs = [
        (s, c) for s, c in statements(resources["StateMachineRole"]) if any(a.startswith("ecs:") for a in actions(s))
    ]
    assert ecs
    assert all("HasCopyTask" in conditions for _, conditions in ecs)
    copy_task_resources = [n for n, r in resources.items() if n.startswith("CopyTask")]
    assert all(resources[n].get("Condition") == "HasCopyTask" for n in copy_task_resources), copy_task_resources


# --- bucket, topic, trigger ------------------------------------------------------------------------------------
def test_created_bucket_is_private_encrypted_tls_only_and_cleans_up_uploads(resources: dict[str, Any]) -> None:
    bucket = resources["ModelBucket"]
    assert bucket["Condition"] == "CreateBucket"
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert 1 <= rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 2
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    (deny,) = resources["ModelBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_topic_is_encrypted_and_the_alarm_notifies_it(resources: dict[str, Any]) -> None:
    assert "KmsMasterKeyId" in resources["NotificationTopic"]["Properties"]
    alarm = resources["FailedExecutionsAlarm"]["Properties"]
    assert alarm["MetricName"] == "ExecutionsFailed"
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]
    assert resources["NotificationEmailSubscription"]["Condition"] == "HasEmail"


def test_request_rule_starts_this_state_machine_with_the_event_detail(resources: dict[str, Any]) -> None:
    rule = resources["ImportRequestRule"]["Properties"]
    assert rule["EventPattern"] == {"source": ["modelferry.requests"], "detail-type": ["ModelImportRequested"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "ModelImportStateMachine"}
    assert target["InputPath"] == "$.detail"
    role_id, _ = target["RoleArn"]["Fn::GetAtt"]
    (grant,) = allow_statements(resources[role_id]["Properties"]["Policies"])
    assert actions(grant) == ["states:StartExecution"]
    assert grant["Resource"] == {"Ref": "ModelImportStateMachine"}


# --- parameters and outputs --------------------------------------------------------------------------------------
def test_parameters_are_described_and_match_the_contract(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert all(p.get("Description") for p in parameters.values())
    defaults = {name: p.get("Default") for name, p in parameters.items()}
    assert defaults["ModelBucketName"] == ""
    assert defaults["ModelPrefix"] == "models/"
    assert defaults["RunsPrefix"] == "modelferry-runs/"
    assert defaults["HfEndpoint"] == "https://huggingface.co"
    assert defaults["ImportPollSeconds"] == 60
    assert defaults["ImportTimeoutSeconds"] == 14400
    assert defaults["LambdaMaxFileBytes"] == 21474836480
    assert defaults["LogRetentionDays"] == 30
    for name in ("PricePerCmuMinute", "StoragePricePerCmuMonth"):
        assert "pricing page" in parameters[name]["Description"]


@pytest.mark.parametrize(("name", "value"), [("ModelPrefix", "models/"), ("RunsPrefix", "a/b-c_d.e/")])
def test_prefix_pattern_accepts_folders(template: dict[str, Any], name: str, value: str) -> None:
    assert re.fullmatch(template["Parameters"][name]["AllowedPattern"], value)


@pytest.mark.parametrize("value", ["models", "/models/", "../models/", "models//", "mo dels/", ""])
def test_prefix_pattern_refuses_non_folders(template: dict[str, Any], value: str) -> None:
    assert not re.fullmatch(template["Parameters"]["ModelPrefix"]["AllowedPattern"], value)


def test_outputs_name_what_people_need(template: dict[str, Any]) -> None:
    assert {
        "StateMachineArn",
        "TopicArn",
        "ModelBucket",
        "OutcomeEventBusName",
        "ImportRoleArn",
        "StartExecutionCommand",
    } <= set(template["Outputs"])


def test_start_execution_command_is_a_valid_cli_line_with_a_valid_request(template: dict[str, Any]) -> None:
    line = template["Outputs"]["StartExecutionCommand"]["Value"]["Fn::Sub"]
    words = shlex.split(line)
    assert words[:3] == ["aws", "stepfunctions", "start-execution"]
    assert words[words.index("--state-machine-arn") + 1] == "${ModelImportStateMachine}"
    request = json.loads(words[words.index("--input") + 1])
    assert set(request) == {"repo_id", "model_name"}
    assert parse_request(request).repo_id == request["repo_id"]


def test_eventbridge_command_sends_what_the_rule_matches(template: dict[str, Any]) -> None:
    words = shlex.split(template["Outputs"]["StartFromEventBridgeCommand"]["Value"]["Fn::Sub"])
    assert words[:3] == ["aws", "events", "put-events"]
    (entry,) = json.loads(words[words.index("--entries") + 1])
    pattern = template["Resources"]["ImportRequestRule"]["Properties"]["EventPattern"]
    assert entry["Source"] in pattern["source"]
    assert entry["DetailType"] in pattern["detail-type"]
    parse_request(json.loads(entry["Detail"]))


def test_the_copy_image_builds_for_the_task_definitions_platform_from_a_small_context() -> None:
    """Static: the task definition runs X86_64, so the deploy guide builds linux/amd64; the context leaves out
    environments and caches (the .dockerignore starts by excluding everything)."""
    assert "docker build --platform linux/amd64" in (ROOT / "docs" / "deploy.md").read_text()
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "*" in ignored
    assert "!functions/modelferry/" in ignored


def test_the_copy_images_base_is_pinned_by_digest() -> None:
    """A tag moves; a digest names one image. Every FROM line names its base by an index digest."""
    from_lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")]
    assert from_lines
    for line in from_lines:
        assert re.fullmatch(r"FROM [a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}( AS \w+)?", line), line
