"""What IAM checks for each AWS API call the stack's code makes: actions, resource ARNs, condition keys.

Sources, AWS Service Authorization Reference (one page per service, "Actions, resources, and condition keys for
..."): Amazon S3, Amazon Bedrock, AWS KMS, Amazon SNS, Amazon EventBridge, AWS Secrets Manager, AWS Step Functions,
AWS Lambda, Amazon ECS, AWS Identity and Access Management (iam:PassRole, iam:PassedToService). And:
- S3 user guide, "Required permissions for Amazon S3 API operations": HeadObject needs s3:GetObject; ListObjectsV2
  needs s3:ListBucket on the bucket, with `s3:prefix`, `s3:delimiter`, `s3:max-keys` in the context; every part of
  a multipart upload needs s3:PutObject; AbortMultipartUpload needs s3:AbortMultipartUpload.
- S3 API reference, GetObject and HeadObject: a missing key answers 404 only to a caller with s3:ListBucket on the
  bucket, otherwise 403 Access Denied (`missing_key_listing`).
- S3 user guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)": writing an SSE-KMS object needs
  kms:GenerateDataKey, reading one kms:Decrypt, a multipart upload both (S3 decrypts the data key to complete it);
  S3 asks KMS on the caller's behalf, so kms:ViaService is `s3.REGION.amazonaws.com`.
- SNS developer guide, "Data encryption" / "Managing Amazon SNS encryption keys": publishing to an encrypted topic
  needs kms:GenerateDataKey and kms:Decrypt on the topic's key.
- Bedrock user guide, "Import a customized model" (prerequisites): the caller of CreateModelImportJob needs
  iam:PassRole on the service role, which IAM checks with `iam:PassedToService` = bedrock.amazonaws.com.

What the rig cannot prove: the ARN IAM checks for CreateModelImportJob ends in the job's generated id, which does not
exist before the call; here it ends in the job's name (a policy naming `model-import-job/*` matches both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelferry_cli.local.iam.policy import Request


@dataclass(frozen=True)
class StackFacts:
    """What the mapping needs to know about the local stack: where it runs and which keys encrypt what."""

    region: str
    account: str
    partition: str = "aws"
    bucket_keys: Mapping[str, str] = field(default_factory=dict)  # bucket -> KMS key ARN of its default encryption
    topic_keys: Mapping[str, str] = field(default_factory=dict)  # topic ARN -> KMS key ARN of the topic
    # task definition ARN -> the roles RunTask passes (its task role and execution role)
    task_definition_roles: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # The state machine whose task tokens the stack's functions send back (a token does not name it).
    state_machine_arn: str = ""

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account if account else ''}:"
            f"{resource}"
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "account": self.account,
            "partition": self.partition,
            "bucket_keys": dict(self.bucket_keys),
            "topic_keys": dict(self.topic_keys),
            "task_definition_roles": {k: list(v) for k, v in self.task_definition_roles.items()},
            "state_machine_arn": self.state_machine_arn,
        }


@dataclass(frozen=True)
class Need:
    """One authorization the call needs. `denied_as` overrides the service's usual denial error, for the checks a
    service reports under a name of their own (SNS reports a refused topic key as KMSAccessDenied)."""

    request: Request
    denied_as: tuple[str, int] | None = None


class UnmappedCall(LookupError):
    """A call the rig has no IAM mapping for: a gap in this table, not a permission problem."""


# --- S3 -------------------------------------------------------------------------------------------------------------
_S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
}
# The bucket's key for each call that touches object data under SSE-KMS (the S3 user guide's SSE-KMS page).
_S3_KEY_ACTIONS = {
    "GetObject": ("kms:Decrypt",),
    "PutObject": ("kms:GenerateDataKey",),
    "CreateMultipartUpload": ("kms:GenerateDataKey", "kms:Decrypt"),
    "UploadPart": ("kms:GenerateDataKey",),
    "CompleteMultipartUpload": ("kms:Decrypt",),
}


def _s3(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    if operation != "ListObjectsV2" and operation not in _S3_OBJECT_ACTIONS:
        raise UnmappedCall(f"s3.{operation}")
    bucket = params["Bucket"]
    bucket_arn = f"arn:{facts.partition}:s3:::{bucket}"
    if operation == "ListObjectsV2":
        context = {"s3:prefix": params.get("Prefix"), "s3:delimiter": params.get("Delimiter")}
        if "MaxKeys" in params:
            context["s3:max-keys"] = str(params["MaxKeys"])
        return [Need(Request("s3:ListBucket", bucket_arn, {k: v for k, v in context.items() if v is not None}))]
    needs = [Need(Request(_S3_OBJECT_ACTIONS[operation], f"{bucket_arn}/{params['Key']}"))]
    key = facts.bucket_keys.get(bucket)
    if key:
        via = {"kms:ViaService": f"s3.{facts.region}.amazonaws.com", "kms:CallerAccount": facts.account}
        needs += [Need(Request(action, key, via)) for action in _S3_KEY_ACTIONS.get(operation, ())]
    return needs


def missing_key_listing(params: Mapping[str, Any], facts: StackFacts) -> Request:
    """What decides whether a read of a missing key answers 404 (allowed) or 403 (denied)."""
    return Request("s3:ListBucket", f"arn:{facts.partition}:s3:::{params['Bucket']}", {"s3:prefix": params["Key"]})


# --- Bedrock --------------------------------------------------------------------------------------------------------
def _bedrock_arn(identifier: str, kind: str, facts: StackFacts) -> str:
    return identifier if identifier.startswith("arn:") else facts.arn("bedrock", f"{kind}/{identifier}")


def _bedrock(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    action = f"bedrock:{operation}"
    if operation == "ListModelImportJobs":
        return [Need(Request(action, "*"))]  # a List action: no resource-level permissions
    if operation == "GetModelImportJob":
        return [Need(Request(action, _bedrock_arn(params["jobIdentifier"], "model-import-job", facts)))]
    if operation in {"GetImportedModel", "DeleteImportedModel"}:
        return [Need(Request(action, _bedrock_arn(params["modelIdentifier"], "imported-model", facts)))]
    if operation == "CreateModelImportJob":
        job = facts.arn("bedrock", f"model-import-job/{params['jobName']}")
        needs = [
            Need(Request(action, job)),
            Need(Request("iam:PassRole", params["roleArn"], {"iam:PassedToService": "bedrock.amazonaws.com"})),
        ]
        if params.get("jobTags"):
            needs.append(Need(Request("bedrock:TagResource", job)))
        if params.get("importedModelTags"):
            model = facts.arn("bedrock", f"imported-model/{params['importedModelName']}")
            needs.append(Need(Request("bedrock:TagResource", model)))
        return needs
    raise UnmappedCall(f"bedrock.{operation}")


def _bedrock_runtime(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    if operation not in {"InvokeModel", "InvokeModelWithResponseStream"}:
        raise UnmappedCall(f"bedrock-runtime.{operation}")
    model = params["modelId"]
    arn = model if model.startswith("arn:") else facts.arn("bedrock", f"foundation-model/{model}", account=False)
    action = "bedrock:InvokeModel" if operation == "InvokeModel" else "bedrock:InvokeModelWithResponseStream"
    return [Need(Request(action, arn))]


# --- Messaging, secrets, workflow -----------------------------------------------------------------------------------
def _sns(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    if operation != "Publish":
        raise UnmappedCall(f"sns.{operation}")
    topic = params["TopicArn"]
    needs = [Need(Request("sns:Publish", topic))]
    key = facts.topic_keys.get(topic)
    if key:
        via = {"kms:ViaService": f"sns.{facts.region}.amazonaws.com", "kms:CallerAccount": facts.account}
        # SNS reports a refused topic key as KMSAccessDenied, HTTP 400 (botocore's SNS model, Publish errors).
        needs += [
            Need(Request(action, key, via), denied_as=("KMSAccessDenied", 400))
            for action in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    return needs


def _events(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    if operation != "PutEvents":
        raise UnmappedCall(f"events.{operation}")
    needs = []
    for entry in params["Entries"]:
        bus = entry.get("EventBusName") or "default"
        arn = bus if bus.startswith("arn:") else facts.arn("events", f"event-bus/{bus}")
        context = {"events:source": entry.get("Source", ""), "events:detail-type": entry.get("DetailType", "")}
        needs.append(Need(Request("events:PutEvents", arn, context)))
    return needs


def _secretsmanager(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    if operation != "GetSecretValue":
        raise UnmappedCall(f"secretsmanager.{operation}")
    secret = params["SecretId"]
    # A name is checked against the secret's ARN, which ends in a random suffix the name cannot predict.
    arn = secret if secret.startswith("arn:") else facts.arn("secretsmanager", f"secret:{secret}-??????")
    return [Need(Request("secretsmanager:GetSecretValue", arn))]


def _stepfunctions(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    if operation == "StartExecution":
        return [Need(Request("states:StartExecution", params["stateMachineArn"]))]
    if operation in {"DescribeExecution", "StopExecution"}:
        return [Need(Request(f"states:{operation}", params["executionArn"]))]
    if operation in {"SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"}:
        # The Service Authorization Reference lists the state machine as these actions' resource (the token names
        # none; here it is the stack's one state machine). Not provable locally: which ARN AWS checks.
        return [Need(Request(f"states:{operation}", facts.state_machine_arn or "*"))]
    raise UnmappedCall(f"stepfunctions.{operation}")


_DYNAMODB_ITEM_ACTIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"}


def _dynamodb(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    """Item calls are checked on the table's ARN, a Query or Scan of an index on the index's ARN ("Actions,
    resources, and condition keys for Amazon DynamoDB"; the DynamoDB developer guide, "Using identity-based
    policies")."""
    if operation not in _DYNAMODB_ITEM_ACTIONS:
        raise UnmappedCall(f"dynamodb.{operation}")
    table = params["TableName"]
    arn = table if table.startswith("arn:") else facts.arn("dynamodb", f"table/{table}")
    if params.get("IndexName"):
        arn = f"{arn}/index/{params['IndexName']}"
    return [Need(Request(f"dynamodb:{operation}", arn))]


def _lambda(operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    if operation != "Invoke":
        raise UnmappedCall(f"lambda.{operation}")
    name = params["FunctionName"]
    arn = name if name.startswith("arn:") else facts.arn("lambda", f"function:{name}")
    qualifier = params.get("Qualifier")
    return [Need(Request("lambda:InvokeFunction", f"{arn}:{qualifier}" if qualifier else arn))]


_SERVICES: dict[str, Callable[[str, Mapping[str, Any], StackFacts], list[Need]]] = {
    "s3": _s3,
    "bedrock": _bedrock,
    "bedrock-runtime": _bedrock_runtime,
    "sns": _sns,
    "events": _events,
    "secretsmanager": _secretsmanager,
    "stepfunctions": _stepfunctions,
    "lambda": _lambda,
    "dynamodb": _dynamodb,
}


def needs_for(service: str, operation: str, params: Mapping[str, Any], facts: StackFacts) -> list[Need]:
    """Every authorization the call `service.operation(**params)` needs. Raises UnmappedCall for a call the table
    does not know (so a new call fails loudly until it is mapped)."""
    if service not in _SERVICES:
        raise UnmappedCall(f"{service}.{operation}")
    return _SERVICES[service](operation, params, facts)


def ecs_run_task(task_definition: str, cluster: str, passed_roles: Sequence[str]) -> list[Need]:
    """ecs:RunTask as the state machine's `ecs:runTask.sync` makes it: RunTask on the task definition with
    `ecs:cluster` in the context, and iam:PassRole on the task's roles (ECS developer guide, "Amazon ECS task
    execution IAM role" / "Task IAM role"; Step Functions developer guide, "IAM policies for Amazon ECS/Fargate")."""
    needs = [Need(Request("ecs:RunTask", task_definition, {"ecs:cluster": cluster}))]
    needs += [
        Need(Request("iam:PassRole", role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})) for role in passed_roles
    ]
    return needs
