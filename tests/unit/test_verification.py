"""Verify: the exact InvokeModel request (botocore Stubber), what makes a reply usable, and the not-ready budget
measured on Bedrock's clock from the first refusal (a ledger in moto's S3)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from modelferry.adapters.s3 import get_json
from modelferry.contract import ModelDescription, RunInfo
from modelferry.errors import (
    BedrockThrottled,
    BedrockUnavailable,
    InvocationFailed,
    ModelNotReady,
    ModelNotReadyTimedOut,
    VerificationFailed,
)
from modelferry.request import DEFAULT_VERIFY_PROMPT
from modelferry.stages.verify import check_reply, verify_model

REGION = "us-east-1"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# The payload the state machine sends VerifyModel (the file `sam local invoke -e` uses).
EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "verify-model.json").read_text())
RUN = RunInfo.model_validate(EVENT["run"]).model_copy(
    update={"verify_prompt": DEFAULT_VERIFY_PROMPT, "verify_max_tokens": 64, "verify_expect": None}
)
BUCKET = RUN.bucket
MODEL_ARN = EVENT["model_arn"]
DESCRIPTION = ModelDescription(
    model_arn=MODEL_ARN,
    architecture="gpt_oss",
    instruct_supported=True,
    custom_model_units=2,
    custom_model_units_version="v1.0",
)


def completion(content: Any = "I am a language model.", **overrides: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1764072000,
        "model": MODEL_ARN,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    }
    reply.update(overrides)
    return reply


def choice(message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A complete choices[] entry: index 0, the assistant's role, then what the case varies."""
    return {"index": 0, "message": {"role": "assistant", **message}, **fields}


def raw(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = _client("bedrock")
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.fixture
def runtime() -> Iterator[tuple[Any, Stubber]]:
    client = _client("bedrock-runtime")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def described(stubber: Stubber, created: datetime | None = None) -> None:
    stubber.add_response(
        "get_imported_model",
        {
            **({"creationTime": created} if created else {}),
            "modelArn": MODEL_ARN,
            "modelName": RUN.model_name,
            "modelArchitecture": "gpt_oss",
            "instructSupported": True,
            "customModelUnits": {"customModelUnitsPerModelCopy": 2, "customModelUnitsVersion": "v1.0"},
        },
        {"modelIdentifier": MODEL_ARN},
    )


def answers(stubber: Stubber, body: bytes, max_tokens: int = 64, at: datetime | None = None) -> None:
    meta = {"ResponseMetadata": {"HTTPHeaders": {"date": format_datetime(at, usegmt=True)}}} if at else {}
    stubber.add_response(
        "invoke_model",
        {"body": StreamingBody(io.BytesIO(body), len(body)), "contentType": "application/json", **meta},
        {
            "modelId": MODEL_ARN,
            "body": json.dumps(
                {
                    "messages": [{"role": "user", "content": DEFAULT_VERIFY_PROMPT}],
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                }
            ),
            "contentType": "application/json",
            "accept": "application/json",
        },
    )


def refuses(stubber: Stubber, code: str, message: str, status: int = 429, at: datetime | None = None) -> None:
    meta = {"HTTPHeaders": {"date": format_datetime(at, usegmt=True)}} if at else None
    stubber.add_client_error("invoke_model", code, message, status, response_meta=meta)


def verify(bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any, budget: int = 1200) -> Any:
    return verify_model(MODEL_ARN, RUN, bedrock=bedrock[0], runtime=runtime[0], s3=s3, not_ready_budget_seconds=budget)


# --- the request and a good reply -------------------------------------------------------------------------------------


def test_one_openai_chat_completions_call_and_the_result_recorded(
    bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any
) -> None:
    described(bedrock[1])
    answers(runtime[1], raw(completion()))

    result = verify(bedrock, runtime, s3)

    assert result.model == DESCRIPTION
    assert (result.reply, result.reasoning, result.finish_reason) == ("I am a language model.", None, "stop")
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (12, 6, 18)
    assert result.latency_ms >= 0
    assert result.cold_start_seconds is None  # GetImportedModel gave no creationTime
    record = get_json(s3, BUCKET, RUN.layout.verify_result)
    assert record["prompt"] == DEFAULT_VERIFY_PROMPT
    assert record["reply"] == "I am a language model."
    assert record["model"]["custom_model_units"] == 2


def test_a_reasoning_model_cut_off_in_its_reasoning_is_asked_again_with_a_larger_budget(
    bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any
) -> None:
    described(bedrock[1])
    cut_off = completion(
        choices=[choice({"content": "", "reasoning_content": "The user asks"}, finish_reason="length")]
    )
    answers(runtime[1], raw(cut_off), max_tokens=64)
    answers(runtime[1], raw(cut_off), max_tokens=256)
    answers(runtime[1], raw(completion(content="I am GPT-OSS.")), max_tokens=1024)

    result = verify(bedrock, runtime, s3)

    assert (result.reply, result.finish_reason) == ("I am GPT-OSS.", "stop")


@pytest.mark.parametrize(
    "reply",
    [
        completion(
            content="",
            choices=[choice({"content": None, "reasoning_content": "Thinking."}, finish_reason="length")],
        ),
        completion(choices=[choice({"content": ""}, reasoning_content="Thinking.", finish_reason="length")]),
        completion(choices=[choice({"content": "", "reasoning": "Thinking."}, finish_reason="length")]),
    ],
    ids=["message.reasoning_content", "choice.reasoning_content", "message.reasoning"],
)
def test_a_reasoning_model_that_only_reasoned_still_answers(reply: dict[str, Any]) -> None:
    result = check_reply(raw(reply), DESCRIPTION, 5, expect="Think")
    assert (result.reply, result.reasoning, result.finish_reason) == ("", "Thinking.", "length")


def test_content_given_as_parts_is_read_as_text() -> None:
    parts = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world."}]
    assert check_reply(raw(completion(content=parts)), DESCRIPTION, 5, expect=None).reply == "Hello, world."


def test_total_tokens_is_computed_when_the_reply_leaves_it_out() -> None:
    reply = completion(usage={"prompt_tokens": 3, "completion_tokens": 4})
    assert check_reply(raw(reply), DESCRIPTION, 5, expect=None).total_tokens == 7


# --- unusable replies -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expect", "complaint"),
    [
        (b"", None, "empty"),
        (b'{"choices": [{"message": {"content": "cut', None, "not JSON"),
        (raw({"error": "boom"}), None, "no choices[0]"),
        (raw(completion(choices=[])), None, "no choices[0]"),
        (raw(completion(content="")), None, "no content and no reasoning_content"),
        (raw(completion(content="   ")), None, "no content and no reasoning_content"),
        (raw(completion(choices=[{"message": {"content": "hi"}}])), None, "no finish_reason"),
        (raw(completion(id=None)), None, "reply's id is null"),
        (raw(completion(object="text_completion")), None, "object is \"text_completion\", expected 'chat.completion'"),
        (raw(completion(created="today")), None, "created is"),
        (raw(completion(model=None)), None, "model is null"),
        (
            raw(completion(choices=[{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}])),
            None,
            r"choices[0].index is null",
        ),
        (
            raw(completion(choices=[choice({"role": "user", "content": "hi"}, finish_reason="stop")])),
            None,
            'message.role is "user"',
        ),
        (
            raw(completion(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 9})),
            None,
            "total_tokens is 9, not prompt_tokens \\+ completion_tokens",
        ),
        (raw(completion(usage=None)), None, "usage lacks token counts"),
        (raw(completion(usage={"prompt_tokens": "many"})), None, "usage lacks token counts"),
        (raw(completion()), "Paris", "does not contain verify_expect 'Paris'"),
    ],
    ids=[
        "no-bytes",
        "truncated",
        "error-object",
        "no-choices",
        "empty",
        "blank",
        "no-finish",
        "no-id",
        "not-chat-completion",
        "bad-created",
        "no-model",
        "no-index",
        "wrong-role",
        "total-not-sum",
        "no-usage",
        "bad-usage",
        "expect",
    ],
)
def test_an_unusable_reply_fails_verification_saying_why(body: bytes, expect: str | None, complaint: str) -> None:
    with pytest.raises(VerificationFailed, match=complaint.replace("[", r"\[")):
        check_reply(body, DESCRIPTION, 5, expect)


# --- refusals ---------------------------------------------------------------------------------------------------------


def test_not_ready_is_retried_within_its_budget_then_times_out(
    bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any
) -> None:
    message = "Model is not ready for inference. Wait and try your request again."
    for minutes in (0, 10, 21):
        described(bedrock[1])
        refuses(runtime[1], "ModelNotReadyException", message, at=T0 + timedelta(minutes=minutes))

    with pytest.raises(ModelNotReady, match="attempt 1"):
        verify(bedrock, runtime, s3)
    with pytest.raises(ModelNotReady, match=r"attempt 2, 10 min \(600 s\) of a 20 min \(1200 s\) budget"):
        verify(bedrock, runtime, s3)
    with pytest.raises(ModelNotReadyTimedOut) as excinfo:
        verify(bedrock, runtime, s3)

    text = str(excinfo.value)
    assert "after 21 min (1260 s) (3 attempts)" in text
    assert "ModelNotReadyBudgetSeconds" in text
    assert MODEL_ARN in text
    assert get_json(s3, BUCKET, RUN.layout.not_ready_ledger)["refusals"] == 3


@pytest.mark.parametrize(
    "case",
    [
        ("ThrottlingException", 429, BedrockThrottled, "ThrottlingException"),
        ("ServiceUnavailableException", 503, BedrockUnavailable, "ServiceUnavailableException"),
        ("InternalServerException", 500, BedrockUnavailable, "InternalServerException"),
        ("ValidationException", 400, InvocationFailed, "refused the OpenAI chat-completions body"),
        ("ModelErrorException", 424, InvocationFailed, "failed while answering"),
        ("AccessDeniedException", 403, InvocationFailed, "bedrock:InvokeModel"),
    ],
    ids=lambda case: case[0],
)
def test_other_refusals_are_told_apart_by_code(
    bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any, case: tuple[str, int, type, str]
) -> None:
    code, status, expected, in_message = case
    described(bedrock[1])
    refuses(runtime[1], code, "the service's words", status)
    with pytest.raises(expected) as excinfo:
        verify(bedrock, runtime, s3)
    assert type(excinfo.value) is expected  # e.g. throttling is never mistaken for a cold model
    assert in_message in str(excinfo.value)
    assert "the service's words" in str(excinfo.value)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0  # no not-ready wait was started


def test_a_model_that_cannot_be_described_fails_verification_at_once(
    bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any
) -> None:
    bedrock[1].add_client_error(
        "get_imported_model", "ResourceNotFoundException", f"Could not find imported model {MODEL_ARN}.", 404
    )
    with pytest.raises(InvocationFailed, match="ResourceNotFoundException: Could not find imported model"):
        verify(bedrock, runtime, s3)


# --- what the first answer tells --------------------------------------------------------------------------------------


def test_the_cold_start_is_the_time_from_the_import_to_the_first_answer_on_bedrocks_clock(
    bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any
) -> None:
    started = datetime.fromisoformat(RUN.started_at).replace(microsecond=0)  # an HTTP Date has whole seconds
    imported = started + timedelta(minutes=14)
    described(bedrock[1], created=imported)
    answers(runtime[1], raw(completion()), at=imported + timedelta(minutes=4, seconds=5))

    result = verify(bedrock, runtime, s3)

    assert result.model.created_at == imported.isoformat()
    assert result.cold_start_seconds == 245


def test_a_model_made_before_the_run_reports_no_cold_start(
    bedrock: tuple[Any, Stubber], runtime: tuple[Any, Stubber], s3: Any
) -> None:
    started = datetime.fromisoformat(RUN.started_at)
    described(bedrock[1], created=started - timedelta(days=3))  # reused: its import was another run's
    answers(runtime[1], raw(completion()), at=started + timedelta(minutes=1))

    assert verify(bedrock, runtime, s3).cold_start_seconds is None


def test_tokens_per_second_are_the_completion_tokens_over_the_latency() -> None:
    result = check_reply(raw(completion()), DESCRIPTION, latency_ms=2000, expect=None)
    assert result.tokens_per_second == 3.0  # 6 completion tokens in 2 s
    assert check_reply(raw(completion()), DESCRIPTION, latency_ms=0, expect=None).tokens_per_second is None
