"""IAM in the local rig: each principal's policy from template.yaml, evaluated on every boto3 call it makes.

- `policy`: IAM's evaluation rules for identity policy statements (what it does not model is listed there).
- `template_policies`: the statements of each function and role in template.yaml, intrinsics resolved with the
  local stack's names.
- `calls`: what IAM checks for each API call the code makes (actions, ARNs, condition keys, KMS on encrypted
  buckets and topics).
- `guard`: the patch of botocore's `BaseClient._make_api_call`, the principal context and its inheritance by
  threads, `enforce_in_this_process` for worker processes.
"""

from modelferry_cli.local.iam.calls import StackFacts
from modelferry_cli.local.iam.guard import (
    AccessDenied,
    Principal,
    acting_as,
    current_principal,
    enforce_in_this_process,
    installed,
)
from modelferry_cli.local.iam.template_policies import StackNames, principal_statements

__all__ = [
    "AccessDenied",
    "Principal",
    "StackFacts",
    "StackNames",
    "acting_as",
    "current_principal",
    "enforce_in_this_process",
    "installed",
    "principal_statements",
]
