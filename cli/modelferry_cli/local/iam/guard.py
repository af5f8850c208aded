"""Every boto3 call made on behalf of a principal of the stack is evaluated against that principal's policy first.

The principal is a `contextvars.ContextVar`: the rig sets it around each Lambda handler invocation, around the state
machine's executions (for its own integrations) and in the local Fargate task's process; threads and thread pools
started under a principal inherit it (the copy engine uploads parts from a pool). Calls made with no principal (the
rig's own set-up, the tests' own checks) are not evaluated.

A denied call raises the `botocore.exceptions.ClientError` the service answers with (botocore service models, and
each service's "Common Errors" API reference page for the JSON services that do not model the error):

| service | error code | HTTP |
| S3 | AccessDenied (HeadObject, which has no body: "403" / "Forbidden", as botocore reports it) | 403 |
| Bedrock, Bedrock Runtime, Lambda | AccessDeniedException | 403 |
| SNS | AuthorizationError; a refused topic key KMSAccessDenied | 403; 400 |
| EventBridge, Secrets Manager, Step Functions, ECS, KMS | AccessDeniedException | 400 |

The message follows the IAM user guide's "Troubleshoot access denied error messages" form ("User: ARN is not
authorized to perform: ACTION on resource: ARN because no identity-based policy allows the ACTION action"). What the
rig cannot prove: the exact wording each service puts in front of it, and whether a service answers a refused KMS key
with its own code (S3 reports AccessDenied; SNS documents KMSAccessDenied).
"""

from __future__ import annotations

import contextvars
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from modelferry_cli.local.iam.calls import Need, StackFacts, missing_key_listing, needs_for
from modelferry_cli.local.iam.policy import Decision, Verdict, evaluate

_DENIALS = {
    "s3": ("AccessDenied", 403),
    "bedrock": ("AccessDeniedException", 403),
    "bedrock-runtime": ("AccessDeniedException", 403),
    "lambda": ("AccessDeniedException", 403),
    "sns": ("AuthorizationError", 403),
}
_JSON_DENIAL = ("AccessDeniedException", 400)
_S3_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class Principal:
    """A role of the stack with its resolved identity policy statements (JSON-serialisable, for worker processes)."""

    name: str
    statements: Sequence[Mapping[str, Any]]
    facts: StackFacts

    @property
    def arn(self) -> str:
        return f"arn:{self.facts.partition}:sts::{self.facts.account}:assumed-role/{self.name}/local"

    def to_json(self) -> str:
        spec = {"principal": self.name, "statements": list(self.statements), "facts": self.facts.to_json_dict()}
        return json.dumps(spec)

    @classmethod
    def from_json(cls, text: str) -> Principal:
        spec = json.loads(text)
        return cls(spec["principal"], spec["statements"], StackFacts(**spec["facts"]))

    def decide(self, need: Need) -> Verdict:
        return evaluate(self.statements, need.request)


_UNSET = object()
_current: contextvars.ContextVar[Any] = contextvars.ContextVar("modelferry_local_principal", default=_UNSET)
_process_principal: Principal | None = None  # set once in a worker process by enforce_in_this_process


def current_principal() -> Principal | None:
    value = _current.get()
    return _process_principal if value is _UNSET else value  # type: ignore[no-any-return]


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Calls made inside (and in threads started inside) are made as `principal`; None: as the rig itself."""
    token = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(token)


class AccessDenied(ClientError):
    """The ClientError a denied call raises (a subclass, so the code under test sees an ordinary ClientError)."""

    verdict: Verdict


def denial(
    verdict: Verdict, principal: Principal, service: str, operation: str, code_status: tuple[str, int]
) -> AccessDenied:
    action, resource = verdict.request.action, verdict.request.resource
    why = (
        f"with an explicit deny in an identity-based policy ({verdict.statement_id or 'no Sid'})"
        if verdict.decision is Decision.EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    code, status = code_status
    message = f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} {why}"
    if service == "s3" and operation == "HeadObject":
        code, message = "403", "Forbidden"  # a HEAD response has no body: botocore names the error by its status
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4()), "HTTPHeaders": {}},
    }
    error = AccessDenied(response, operation)
    error.verdict = verdict
    return error


# Every denial, in order: (principal, verdict); the rig's report and the tests read it.
denials: list[tuple[str, Verdict]] = []
_denials_lock = threading.Lock()


def record_denials(found: Sequence[tuple[str, Verdict]]) -> None:
    """Add denials recorded in another process (a Lambda worker's, sent back with its invocation's result)."""
    with _denials_lock:
        denials.extend(found)


def authorize(principal: Principal, service: str, operation: str, needs: Sequence[Need]) -> None:
    """Raise the service's denial for the first need the principal's policy does not allow."""
    for need in needs:
        verdict = principal.decide(need)
        if not verdict.allowed:
            with _denials_lock:
                denials.append((principal.name, verdict))
            raise denial(verdict, principal, service, operation, need.denied_as or _DENIALS.get(service, _JSON_DENIAL))


def _guarded(original: Callable[..., Any]) -> Callable[..., Any]:
    def make_api_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        principal = current_principal()
        if principal is None:
            return original(self, operation_name, api_params)
        service = self.meta.service_model.service_name
        authorize(principal, service, operation_name, needs_for(service, operation_name, api_params, principal.facts))
        try:
            return original(self, operation_name, api_params)
        except ClientError as exc:
            if service == "s3" and operation_name in {"GetObject", "HeadObject"}:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in _S3_MISSING:
                    # Without s3:ListBucket, S3 answers a missing key with 403, not 404 (GetObject API reference).
                    listing = Need(missing_key_listing(api_params, principal.facts))
                    authorize(principal, service, operation_name, [listing])
            raise

    return make_api_call


def _submit_in_context(original: Callable[..., Future[Any]]) -> Callable[..., Future[Any]]:
    def submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        return original(self, context.run, fn, *args, **kwargs)

    return submit


def _start_in_context(original: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    def start(self: threading.Thread) -> None:
        context = contextvars.copy_context()
        run = self.run
        self.run = lambda: context.run(run)  # type: ignore[method-assign]
        original(self)

    return start


@contextmanager
def installed() -> Iterator[None]:
    """The guard on botocore's calls, and principals inherited by new threads and pool tasks, until the exit."""
    with ExitStack() as stack:
        guarded = _guarded(BaseClient._make_api_call)  # type: ignore[attr-defined]  # botocore has no stubs for it
        stack.enter_context(mock.patch.object(BaseClient, "_make_api_call", guarded))
        submit = _submit_in_context(ThreadPoolExecutor.submit)
        stack.enter_context(mock.patch.object(ThreadPoolExecutor, "submit", submit))
        stack.enter_context(mock.patch.object(threading.Thread, "start", _start_in_context(threading.Thread.start)))
        yield


_process_guard: ExitStack | None = None


def enforce_in_this_process(principal: str, policy_spec_json: str) -> None:
    """Make every later boto3 call of this process (a worker running one function's handlers, or the local Fargate
    task) be evaluated as `principal`, with the spec `LocalRig` hands out (`Principal.to_json`)."""
    global _process_principal, _process_guard  # noqa: PLW0603 - one principal per worker process, by design
    spec = Principal.from_json(policy_spec_json)
    if spec.name != principal:
        raise ValueError(f"the policy spec is {spec.name!r}'s, not {principal!r}'s")
    _process_principal = spec
    if _process_guard is None:
        _process_guard = ExitStack()
        _process_guard.enter_context(installed())
