"""The Hugging Face token, from Secrets Manager only (never from the execution input, never logged)."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities import parameters


def hub_token(secret_arn: str | None) -> str | None:
    """The token stored in `secret_arn`: a plain string, or JSON with a `token` / `HF_TOKEN` key. Cached 5 min."""
    if not secret_arn:
        return None
    value = parameters.get_secret(secret_arn, max_age=300)
    if isinstance(value, bytes):
        value = value.decode()
    text = str(value).strip()
    if text.startswith("{"):
        document = json.loads(text)
        text = str(document.get("token") or document.get("HF_TOKEN") or "").strip()
    return text or None
