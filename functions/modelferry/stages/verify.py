"""Verify: describe the imported model, then invoke it once with an OpenAI chat-completions body.

A cold model answers ModelNotReadyException (HTTP 429, like throttling): the two are told apart by error code and
retried on separate budgets. The state machine retries ModelNotReady at a steady interval; the budget itself (a stack
parameter, which JSON ASL cannot read) is kept here, measured on Bedrock's clock from the first refusal recorded
under the run prefix.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelferry.adapters.aws import error_code, error_message
from modelferry.adapters.bedrock import WaitLedger, as_utc, describe_duration, service_time, translate_bedrock_error
from modelferry.adapters.s3 import put_json
from modelferry.contract import ModelDescription, RunInfo, VerifyResult
from modelferry.errors import (
    BedrockThrottled,
    BedrockUnavailable,
    InvocationFailed,
    ModelNotReady,
    ModelNotReadyTimedOut,
    VerificationFailed,
)
from modelferry.openai_chat import ReplyInvalid, chat_body, parse_chat_reply

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client

_SNIPPET = 300
# The largest verify_max_tokens the execution input accepts.
MAX_VERIFY_TOKENS = 4096

# What to look at when InvokeModel refuses for good, by error code.
_INVOKE_HINTS = {
    "ValidationException": "the model refused the OpenAI chat-completions body",
    "AccessDeniedException": "the verify function lacks bedrock:InvokeModel on the imported model",
    "ResourceNotFoundException": "the imported model no longer exists",
    "ModelErrorException": "the model failed while answering: check its weights and config.json",
    "ModelTimeoutException": "the model took too long to answer",
}


def describe_model(model_arn: str, *, bedrock: BedrockClient) -> ModelDescription:
    try:
        model = bedrock.get_imported_model(modelIdentifier=model_arn)
    except ClientError as exc:
        translated = translate_bedrock_error(exc, "GetImportedModel")
        if isinstance(translated, BedrockThrottled | BedrockUnavailable):
            raise translated from exc
        raise InvocationFailed(f"cannot describe {model_arn}: {translated}") from exc
    units = model.get("customModelUnits") or {}
    return ModelDescription(
        model_arn=model.get("modelArn", model_arn),
        architecture=model.get("modelArchitecture"),
        instruct_supported=model.get("instructSupported"),
        custom_model_units=units.get("customModelUnitsPerModelCopy"),
        custom_model_units_version=units.get("customModelUnitsVersion"),
        created_at=created.isoformat() if (created := as_utc(model.get("creationTime"))) else None,
    )


def verify_model(
    model_arn: str,
    run: RunInfo,
    *,
    bedrock: BedrockClient,
    runtime: BedrockRuntimeClient,
    s3: S3Client,
    not_ready_budget_seconds: int,
) -> VerifyResult:
    """Describe, invoke (again with more tokens while a reasoning model is cut off in its reasoning), check the
    reply; the result is also written under the run prefix."""
    description = describe_model(model_arn, bedrock=bedrock)
    ledger = WaitLedger(s3, run.bucket, run.layout.not_ready_ledger)
    max_tokens = run.verify_max_tokens
    body = chat_body(run.verify_prompt, max_tokens=max_tokens)
    raw, latency_ms, answered_at = _invoke(runtime, model_arn, body, ledger, not_ready_budget_seconds)
    # A reasoning model (GPT-OSS) spends its budget on reasoning first: cut off there, it needs more tokens, it is not
    # broken. The budget grows up to the largest verify_max_tokens the input allows.
    while _cut_off_in_reasoning(raw) and max_tokens < MAX_VERIFY_TOKENS:
        max_tokens = min(max_tokens * 4, MAX_VERIFY_TOKENS)
        body = chat_body(run.verify_prompt, max_tokens=max_tokens)
        raw, latency_ms, answered_at = _invoke(runtime, model_arn, body, ledger, not_ready_budget_seconds)
    result = check_reply(raw, description, latency_ms, run.verify_expect)
    result.cold_start_seconds = _cold_start_seconds(description, run, answered_at)
    put_json(
        s3,
        run.bucket,
        run.layout.verify_result,
        {"prompt": run.verify_prompt, "expect": run.verify_expect, **result.model_dump(mode="json")},
    )
    return result


def _cold_start_seconds(model: ModelDescription, run: RunInfo, answered_at: datetime) -> int | None:
    """Seconds from the import's completion to the first answer, when this run made the model; a model created
    before the run started was reused, and its import says nothing of this answer."""
    created, started = as_utc(model.created_at), as_utc(run.started_at)
    if created is None or (started is not None and created < started):
        return None
    return max(0, int((answered_at - created).total_seconds()))


def _cut_off_in_reasoning(raw: bytes) -> bool:
    try:
        return parse_chat_reply(raw).cut_off_in_reasoning
    except ReplyInvalid:
        return False  # check_reply says what is wrong


def _invoke(
    runtime: BedrockRuntimeClient, model_arn: str, body: dict[str, Any], ledger: WaitLedger, budget: int
) -> tuple[bytes, int, datetime]:
    """One InvokeModel call: the reply's bytes, the call's latency in milliseconds, and when Bedrock answered."""
    started = time.monotonic()
    try:
        response = runtime.invoke_model(
            modelId=model_arn, body=json.dumps(body), contentType="application/json", accept="application/json"
        )
        raw = response["body"].read()
    except ClientError as exc:
        raise _invoke_error(exc, model_arn, ledger, budget) from exc
    return raw, int((time.monotonic() - started) * 1000), service_time(response)


def _invoke_error(exc: ClientError, model_arn: str, ledger: WaitLedger, budget: int) -> Exception:
    code, message = error_code(exc), error_message(exc)
    if code == "ModelNotReadyException":
        waited, attempts = ledger.note_refusal(service_time(exc.response))
        if waited >= budget:
            return ModelNotReadyTimedOut(
                f"{model_arn} still answered ModelNotReadyException after {describe_duration(waited)} "
                f"({attempts} attempts), past the budget of {describe_duration(budget)} (stack parameter "
                "ModelNotReadyBudgetSeconds). The model is imported and kept: invoke it again later, or start "
                'again with "if_exists": "reuse" to verify it'
            )
        return ModelNotReady(
            f"{model_arn} is not ready yet (cold start): attempt {attempts}, "
            f"{describe_duration(waited)} of a {describe_duration(budget)} budget: {message}"
        )
    if code in {"ThrottlingException", "ServiceQuotaExceededException"}:
        return BedrockThrottled(f"InvokeModel throttled ({code}): {message}")
    if code in {"InternalServerException", "ServiceUnavailableException"}:
        return BedrockUnavailable(f"InvokeModel: Bedrock answered {code}: {message}")
    hint = _INVOKE_HINTS.get(code, "read Bedrock's message")
    return InvocationFailed(f"InvokeModel on {model_arn} failed with {code}: {message} ({hint})")


def check_reply(raw: bytes, model: ModelDescription, latency_ms: int, expect: str | None) -> VerifyResult:
    """A chat completion checked field by field (openai_chat), with `expect` in its content or reasoning if given."""
    try:
        reply = parse_chat_reply(raw)
    except ReplyInvalid as exc:
        raise VerificationFailed(str(exc)) from exc
    content, reasoning = reply.content, reply.reasoning or ""
    if expect and expect not in f"{content}\n{reasoning}":
        raise VerificationFailed(
            f"the reply does not contain verify_expect {expect!r}: {content[:_SNIPPET]!r}"
            + (f", reasoning {reasoning[:_SNIPPET]!r}" if reasoning else "")
        )
    return VerifyResult(
        model=model,
        reply=content,
        reasoning=reply.reasoning,
        finish_reason=reply.finish_reason,
        prompt_tokens=reply.usage.prompt_tokens,
        completion_tokens=reply.usage.completion_tokens,
        total_tokens=reply.usage.total_tokens,
        latency_ms=latency_ms,
        tokens_per_second=round(reply.usage.completion_tokens * 1000 / latency_ms, 1) if latency_ms > 0 else None,
        cold_start_seconds=None,
    )
