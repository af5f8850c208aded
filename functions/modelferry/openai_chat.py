"""The OpenAI chat-completions exchange with an imported model: the request body and the typed reply.

Models imported into Bedrock after 2025-11-11 accept an OpenAI ChatCompletion body through InvokeModel and answer an
OpenAI `chat.completion` object (AWS: "Invoke your imported model", docs.aws.amazon.com/bedrock/latest/userguide/
invoke-imported-model.html). Where a reasoning model (GPT-OSS) puts its reasoning is not documented there: OpenAI-
compatible servers put `reasoning_content` (or `reasoning`) in `message`, some in the choice itself, so every place
is read. The verify stage and `modelferry chat` both build and read the exchange here; stdlib and pydantic only.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

_SNIPPET = 300
# Where reasoning may appear, in the order read: (container, field).
REASONING_PLACES = (
    ("message", "reasoning_content"),
    ("message", "reasoning"),
    ("choice", "reasoning_content"),
    ("choice", "reasoning"),
)


class ReplyInvalid(ValueError):
    """The reply is not a usable chat completion; `field` names the field at fault (a JSON path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatReply(BaseModel):
    id: str
    object: str
    created: int
    model: str
    index: int
    role: str
    content: str
    reasoning: str | None
    finish_reason: str
    usage: ChatUsage

    @property
    def cut_off_in_reasoning(self) -> bool:
        """The token budget ran out before the model left its reasoning: a bigger budget answers, not a fault."""
        return self.finish_reason == "length" and not self.content.strip() and bool(self.reasoning)


def chat_body(prompt: str, *, max_tokens: int, temperature: float = 0.0, system: str | None = None) -> dict[str, Any]:
    """An OpenAI ChatCompletion request body, as InvokeModel takes it for an imported model."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}


def text_of(value: Any) -> str:
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


def reasoning_of(choice: dict[str, Any], message: dict[str, Any]) -> str:
    containers = {"choice": choice, "message": message}
    return next(
        (text for where, name in REASONING_PLACES if (text := text_of(containers[where].get(name))).strip()), ""
    )


def _document(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise ReplyInvalid("$", "the model's reply is empty (no bytes)")
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise ReplyInvalid("$", f"the model's reply is not JSON: {raw[:200]!r}") from exc
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ReplyInvalid("choices[0]", f"the reply has no choices[0]: {str(reply)[:_SNIPPET]}")
    return reply


def _field(container: dict[str, Any], name: str, kind: type, path: str, expected: Any = None) -> Any:
    value = container.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or (expected is not None and value != expected):
        wanted = repr(expected) if expected is not None else kind.__name__
        raise ReplyInvalid(path, f"the reply's {path} is {json.dumps(value)[:80]}, expected {wanted}")
    return value


def _usage(reply: dict[str, Any]) -> ChatUsage:
    found = reply.get("usage")
    usage: dict[str, Any] = found if isinstance(found, dict) else {}
    try:
        prompt_tokens, completion_tokens = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplyInvalid("usage", f"the reply's usage lacks token counts: {usage}") from exc
    total = usage.get("total_tokens")
    if total is not None and total != prompt_tokens + completion_tokens:
        raise ReplyInvalid(
            "usage.total_tokens",
            f"the reply's usage.total_tokens is {total}, not prompt_tokens + completion_tokens "
            f"({prompt_tokens} + {completion_tokens})",
        )
    return ChatUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def parse_chat_reply(raw: bytes) -> ChatReply:
    """Check an InvokeModel reply field by field as OpenAI defines a chat completion; raise naming the field."""
    reply = _document(raw)
    choice: dict[str, Any] = reply["choices"][0]
    message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content, reasoning = text_of(message.get("content")), reasoning_of(choice, message)
    if not content.strip() and not reasoning.strip():
        raise ReplyInvalid(
            "choices[0].message.content",
            f"the reply's choices[0].message has no content and no reasoning_content: {json.dumps(choice)[:_SNIPPET]}",
        )
    finish_reason = choice.get("finish_reason")
    if not finish_reason or not isinstance(finish_reason, str):
        raise ReplyInvalid("choices[0].finish_reason", "the reply's choices[0] has no finish_reason")
    usage = _usage(reply)
    return ChatReply(
        id=_field(reply, "id", str, "id"),
        object=_field(reply, "object", str, "object", "chat.completion"),
        created=_field(reply, "created", int, "created"),
        model=_field(reply, "model", str, "model"),
        index=_field(choice, "index", int, "choices[0].index"),
        role=_field(message, "role", str, "choices[0].message.role", "assistant"),
        content=content,
        reasoning=reasoning or None,
        finish_reason=finish_reason,
        usage=usage,
    )
