"""`modelferry chat MODEL "prompt"`: one OpenAI chat-completions exchange with an imported model through InvokeModel.

The body and the reply are the verify stage's (modelferry.openai_chat). A cold model answers ModelNotReadyException
(HTTP 429, like throttling, told apart by its code): that is "warming up", waited out and retried, not an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from botocore.config import Config
from botocore.exceptions import ClientError

from modelferry.openai_chat import ChatReply, ReplyInvalid, chat_body, parse_chat_reply
from modelferry_cli.aws_context import EXIT_FAILED, EXIT_OK, add_aws_arguments, one_line_aws_errors, region_of, session

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

# botocore's own retries would also retry ModelNotReadyException, silently: one attempt per call, so the warm-up is
# waited out here, where it can be shown.
_RUNTIME_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=300)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="imported model name or ARN")
    parser.add_argument("prompt", help="the user message")
    parser.add_argument("--system", help="a system message sent before the prompt")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=1024,
        help="token budget; a reasoning model (GPT-OSS) spends part of it reasoning (default: %(default)s)",
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--warm-up-attempts",
        type=int,
        default=10,
        help="calls to make while the model answers ModelNotReadyException (default: %(default)s, as AWS advises)",
    )
    parser.add_argument(
        "--interval", type=float, default=30.0, help="seconds between warm-up attempts (default: %(default)s)"
    )
    add_aws_arguments(parser, stack=False)


def resolve_model_arn(bedrock: BedrockClient, model: str) -> str:
    """An imported model's ARN from its name or ARN (InvokeModel on an imported model takes the ARN)."""
    if model.startswith("arn:"):
        return model
    return bedrock.get_imported_model(modelIdentifier=model)["modelArn"]


class WarmUp:
    """InvokeModel, waiting out ModelNotReadyException; counts the refusals."""

    def __init__(self, runtime: BedrockRuntimeClient, attempts: int, interval: float, err: TextIO) -> None:
        self.runtime, self.attempts, self.interval, self.err = runtime, max(1, attempts), interval, err
        self.refusals = 0

    def invoke(self, model_arn: str, body: dict[str, Any]) -> tuple[bytes, int]:
        while True:
            started = time.monotonic()
            try:
                response = self.runtime.invoke_model(
                    modelId=model_arn, body=json.dumps(body), contentType="application/json", accept="application/json"
                )
                return response["body"].read(), int((time.monotonic() - started) * 1000)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ModelNotReadyException":
                    raise
                self.refusals += 1
                if self.refusals >= self.attempts:
                    raise
                print(
                    f"warming up: the model is not ready yet (cold start, attempt {self.refusals} of "
                    f"{self.attempts}); trying again in {self.interval:g} s",
                    file=self.err,
                )
                time.sleep(self.interval)


def _tokens_per_second(reply: ChatReply, latency_ms: int) -> float | None:
    return round(reply.usage.completion_tokens / (latency_ms / 1000), 1) if latency_ms > 0 else None


def as_json(model_arn: str, reply: ChatReply, latency_ms: int, refusals: int) -> dict[str, Any]:
    return {
        "model_arn": model_arn,
        "content": reply.content,
        "reasoning": reply.reasoning,
        "finish_reason": reply.finish_reason,
        "usage": reply.usage.model_dump(),
        "latency_ms": latency_ms,
        "tokens_per_second": _tokens_per_second(reply, latency_ms),
        "not_ready_refusals": refusals,
    }


def print_exchange(reply: ChatReply, latency_ms: int, refusals: int, out: TextIO) -> None:
    if reply.reasoning:
        print("Reasoning: " + reply.reasoning.replace("\n", "\n           "), file=out)
    print("Answer:    " + (reply.content.replace("\n", "\n           ") or "(none)"), file=out)
    usage = reply.usage
    speed = _tokens_per_second(reply, latency_ms)
    print(
        f"Finish:    {reply.finish_reason}; tokens {usage.prompt_tokens} prompt + {usage.completion_tokens} "
        f"completion = {usage.total_tokens}; {latency_ms} ms" + (f", {speed:g} tokens/s" if speed else ""),
        file=out,
    )
    if reply.cut_off_in_reasoning:
        print("Note:      cut off while reasoning: raise --max-tokens for an answer", file=out)
    if refusals:
        print(f"Warm-up:   {refusals} ModelNotReadyException answer(s) before this one (cold start)", file=out)


@one_line_aws_errors
def run(args: argparse.Namespace, out: TextIO) -> int:
    aws = session(args, region_of(args.model))
    model_arn = resolve_model_arn(aws.client("bedrock"), args.model)
    warm_up = WarmUp(
        aws.client("bedrock-runtime", config=_RUNTIME_CONFIG), args.warm_up_attempts, args.interval, sys.stderr
    )
    body = chat_body(args.prompt, max_tokens=args.max_tokens, temperature=args.temperature, system=args.system)
    try:
        raw, latency_ms = warm_up.invoke(model_arn, body)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ModelNotReadyException":
            print(
                f"modelferry: {model_arn} is still warming up after {warm_up.refusals} attempts: try again in a few "
                "minutes (a cold imported model can take up to about 5 minutes to load)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        raise
    try:
        reply = parse_chat_reply(raw)
    except ReplyInvalid as exc:
        print(
            f"modelferry: the model answered something that is not a chat completion ({exc.field}): {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.json:
        print(json.dumps(as_json(model_arn, reply, latency_ms, warm_up.refusals)), file=out)
    else:
        print(f"Model:     {model_arn}", file=out)
        print_exchange(reply, latency_ms, warm_up.refusals, out)
    return EXIT_OK
