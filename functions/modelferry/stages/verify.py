"""Verify: describe the imported model, then invoke it once with an OpenAI chat-completions body.

A cold model answers ModelNotReadyException (HTTP 429, like throttling): the two are told apart by error code and
retried on separate budgets. The state machine retries ModelNotReady at a steady interval; the budget itself (a stack
parameter, which JSON ASL cannot read) is kept here, measured on Bedrock's clock from the first refusal recorded
under the run prefix.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelferry.adapters.aws import error_code, error_message
from modelferry.adapters.bedrock import WaitLedger, describe_duration, service_time, translate_bedrock_error
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

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client

_SNIPPET = 300

# What to look at when InvokeModel refuses for good, by error code.
_INVOKE_HINTS = {
    "ValidationException": "the model refused the OpenAI chat-completions body",
    "AccessDeniedException": "the verify function lacks bedrock:InvokeModel on the imported model",
    "ResourceNotFoundException": "the imported model no longer exists",
    "ModelErrorException": "the model failed while answering: check its weights and config.json",
    "ModelTimeoutException": "the model took too long to answer",
}


def chat_request(prompt: str, max_tokens: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0.0}


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
    """Describe, invoke once, check the reply; the result is also written under the run prefix."""
    description = describe_model(model_arn, bedrock=bedrock)
    body = json.dumps(chat_request(run.verify_prompt, run.verify_max_tokens))
    started = time.monotonic()
    try:
        response = runtime.invoke_model(
            modelId=model_arn, body=body, contentType="application/json", accept="application/json"
        )
        raw = response["body"].read()
    except ClientError as exc:
        ledger = WaitLedger(s3, run.bucket, run.layout.not_ready_ledger)
        raise _invoke_error(exc, model_arn, ledger, not_ready_budget_seconds) from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    result = check_reply(raw, description, latency_ms, run.verify_expect)
    put_json(
        s3,
        run.bucket,
        run.layout.verify_result,
        {"prompt": run.verify_prompt, "expect": run.verify_expect, **result.model_dump(mode="json")},
    )
    return result


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


def _text(value: Any) -> str:
    """Message content as text: a string, a list of OpenAI content parts, or anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in value if part is not None
        )
    return json.dumps(value)


def check_reply(raw: bytes, model: ModelDescription, latency_ms: int, expect: str | None) -> VerifyResult:
    """A usable chat completion: content or reasoning, a finish_reason, token counts, and `expect` if given."""
    if not raw.strip():
        raise VerificationFailed("the model's reply is empty (no bytes)")
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise VerificationFailed(f"the model's reply is not JSON: {raw[:200]!r}") from exc
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise VerificationFailed(f"the reply has no choices[0]: {str(reply)[:_SNIPPET]}")
    choice: dict[str, Any] = choices[0]
    message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content = _text(message.get("content"))
    # Where reasoning models put their reasoning is not documented: look in the likely places.
    reasoning = _text(message.get("reasoning_content") or message.get("reasoning") or choice.get("reasoning_content"))
    if not content.strip() and not reasoning.strip():
        raise VerificationFailed(
            f"the reply's choices[0].message has no content and no reasoning_content: {json.dumps(choice)[:_SNIPPET]}"
        )
    finish_reason = choice.get("finish_reason")
    if not finish_reason:
        raise VerificationFailed("the reply's choices[0] has no finish_reason")
    usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
    try:
        prompt_tokens, completion_tokens = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"the reply's usage lacks token counts: {usage}") from exc
    if expect and expect not in f"{content}\n{reasoning}":
        raise VerificationFailed(
            f"the reply does not contain verify_expect {expect!r}: {content[:_SNIPPET]!r}"
            + (f", reasoning {reasoning[:_SNIPPET]!r}" if reasoning else "")
        )
    try:
        total_tokens = int(usage.get("total_tokens") or prompt_tokens + completion_tokens)
    except (TypeError, ValueError):
        total_tokens = prompt_tokens + completion_tokens
    return VerifyResult(
        model=model,
        reply=content,
        reasoning=reasoning or None,
        finish_reason=str(finish_reason),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=total_tokens,
        latency_ms=latency_ms,
    )
