"""Verify: describe the imported model, then invoke it once with an OpenAI chat-completions body.

A cold model answers ModelNotReadyException (HTTP 429, like throttling): the two are told apart by error code and
retried on separate budgets by the state machine.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from modelferry.errors import BedrockThrottled, InvocationFailed, ModelNotReady, VerificationFailed
from modelferry.importing import translate_bedrock_error
from modelferry.planning import RunInfo


class ModelDescription(BaseModel):
    model_arn: str
    architecture: str | None
    instruct_supported: bool | None
    custom_model_units: int | None
    custom_model_units_version: str | None


class VerifyResult(BaseModel):
    model: ModelDescription
    reply: str
    reasoning: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_ms: int


def chat_request(prompt: str, max_tokens: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0.0}


def describe_model(model_arn: str, *, bedrock: Any) -> ModelDescription:
    try:
        model = bedrock.get_imported_model(modelIdentifier=model_arn)
    except ClientError as exc:
        raise translate_bedrock_error(exc, "GetImportedModel") from exc
    units = model.get("customModelUnits") or {}
    return ModelDescription(
        model_arn=model.get("modelArn", model_arn),
        architecture=model.get("modelArchitecture"),
        instruct_supported=model.get("instructSupported"),
        custom_model_units=units.get("customModelUnitsPerModelCopy"),
        custom_model_units_version=units.get("customModelUnitsVersion"),
    )


def verify_model(model_arn: str, run: RunInfo, *, bedrock: Any, runtime: Any) -> VerifyResult:
    description = describe_model(model_arn, bedrock=bedrock)
    body = json.dumps(chat_request(run.verify_prompt, run.verify_max_tokens))
    started = time.monotonic()
    try:
        response = runtime.invoke_model(
            modelId=model_arn, body=body, contentType="application/json", accept="application/json"
        )
        raw = response["body"].read()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "ModelNotReadyException":
            raise ModelNotReady(f"{model_arn} is not ready yet (cold start): {exc}") from exc
        if code in {"ThrottlingException", "ServiceUnavailableException"}:
            raise BedrockThrottled(f"InvokeModel throttled: {exc}") from exc
        translated = translate_bedrock_error(exc, "InvokeModel")
        raise InvocationFailed(str(translated)) from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    return _check_reply(raw, description, latency_ms, run.verify_expect)


def _check_reply(raw: bytes, model: ModelDescription, latency_ms: int, expect: str | None) -> VerifyResult:
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise VerificationFailed(f"the model's reply is not JSON: {raw[:200]!r}") from exc
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise VerificationFailed(f"the reply has no choices[0]: {str(reply)[:300]}")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content") or ""
    # Where reasoning models put their reasoning is not documented: look in both likely places.
    reasoning = message.get("reasoning_content") or choice.get("reasoning_content")
    if not str(content).strip() and not str(reasoning or "").strip():
        raise VerificationFailed("the reply's choices[0].message has no content and no reasoning_content")
    finish_reason = choice.get("finish_reason")
    if not finish_reason:
        raise VerificationFailed("the reply's choices[0] has no finish_reason")
    usage = reply.get("usage") or {}
    try:
        prompt_tokens, completion_tokens = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"the reply's usage lacks token counts: {usage}") from exc
    if expect and expect not in f"{content}\n{reasoning or ''}":
        raise VerificationFailed(f"the reply does not contain verify_expect {expect!r}: {str(content)[:300]!r}")
    return VerifyResult(
        model=model,
        reply=str(content),
        reasoning=str(reasoning) if reasoning else None,
        finish_reason=str(finish_reason),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=int(usage.get("total_tokens") or prompt_tokens + completion_tokens),
        latency_ms=latency_ms,
    )
