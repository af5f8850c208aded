"""InvokeModel on an imported model: the OpenAI chat-completions body it accepts and the reply it gives."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from modelferry_cli.local.bedrock.errors import BedrockError


def _text_of(content: Any) -> str:
    """The text of an OpenAI message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def _malformed_request(reason: str) -> BedrockError:
    return BedrockError(
        "ValidationException", f"Malformed input request: {reason}, please reformat your input and try again."
    )


def parse_chat_request(body: bytes) -> dict[str, Any]:
    """Accept only an OpenAI chat-completions body, as an imported model does."""
    try:
        request = json.loads(body)
    except ValueError:
        raise _malformed_request("the body is not valid JSON") from None
    if not isinstance(request, dict):
        raise _malformed_request("expected a JSON object")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _malformed_request("#: required key [messages] not found or empty")
    for message in messages:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str | list)
        ):
            raise _malformed_request("#/messages: each message needs a string 'role' and a 'content'")
    max_tokens = request.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _malformed_request("#/max_tokens: expected a positive integer")
    temperature = request.get("temperature")
    if temperature is not None and not isinstance(temperature, int | float):
        raise _malformed_request("#/temperature: expected a number")
    return request


# Architectures that answer like a reasoning model: reasoning first, then the content.
REASONING_ARCHITECTURES = frozenset({"gpt_oss"})


def chat_completion(
    model_arn: str, request: dict[str, Any], *, empty: bool, created: datetime, reasoning: bool = False
) -> bytes:
    """A deterministic answer that quotes the last user message, cut at max_tokens words as a model would.

    A reasoning model spends its budget on reasoning first, so a small max_tokens cuts it off before any content
    (finish_reason "length", empty content). Its reasoning goes in ``message.reasoning_content``: one of the places
    OpenAI-compatible servers use; AWS does not document where an imported GPT-OSS puts it.
    """
    messages = request["messages"]
    prompt = next((_text_of(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
    thoughts = f"The user asks: {prompt} I should answer in one short sentence.".split() if reasoning else []
    words = f"Hello! You asked: {prompt}".split()
    max_tokens = request.get("max_tokens") or len(thoughts) + len(words)
    finish_reason = "stop" if len(thoughts) + len(words) <= max_tokens else "length"
    # `empty`: a broken model's reply, with neither content nor reasoning.
    thought = "" if empty else " ".join(thoughts[:max_tokens])
    content = "" if empty else " ".join(words[: max(0, max_tokens - len(thoughts))])
    prompt_tokens = max(1, sum(len(_text_of(m["content"]).split()) for m in messages))
    completion_tokens = len(thought.split()) + len(content.split())
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = thought
    return json.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(created.timestamp()),
            "model": model_arn,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    ).encode()
