"""The execution input: what a person types in the console, an EventBridge event's `detail`, or a request file.

Only `repo_id` and `model_name` are required; everything else has a default or comes from the stack. Every rule
error names the field and the rule, and is raised by the first state, before any side effect.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelferry.errors import InvalidRequest

DEFAULT_VERIFY_PROMPT = "Reply with one short sentence: what are you?"

_HUB_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"{_HUB_NAME}/{_HUB_NAME}")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")
# Bedrock's importedModelName pattern; the name is also an S3 path component, which this pattern keeps safe.
_MODEL_NAME = re.compile(r"(?:[0-9a-zA-Z][_-]?)+")
_ROLE_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_PATTERN_CHARS = re.compile(r"[A-Za-z0-9._/*?\[\]!-]+")
_SECRET_FIELDS = {"hf_token", "token", "hub_token", "huggingface_token", "hf_api_token", "access_token"}


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    repo_id: str = Field(description="Hugging Face repository, ORG/NAME.")
    model_name: str = Field(description="Name of the imported model in Bedrock; also names the S3 folder.")
    revision: str = Field(default="main", description="Branch, tag or commit sha; pinned to a commit at planning.")
    include: tuple[str, ...] = Field(
        default=(),
        max_length=64,
        description="Also copy paths matching these globs (by default only the files Bedrock loads are copied).",
    )
    exclude: tuple[str, ...] = Field(
        default=(), max_length=64, description="Never copy paths matching these globs (wins over include)."
    )
    verify_prompt: str = Field(default=DEFAULT_VERIFY_PROMPT, min_length=1, max_length=4000)
    verify_expect: str | None = Field(default=None, min_length=1, max_length=1000)
    verify_max_tokens: int = Field(default=64, ge=1, le=4096)
    import_role_arn: str | None = Field(default=None, description="Overrides the stack's import role.")
    if_exists: Literal["fail", "reuse", "replace"] = "fail"
    allow_quantized: bool = False

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str) -> str:
        if not _REPO_ID.fullmatch(value) or ".." in value or "--" in value:
            raise ValueError(
                "must be ORG/NAME: letters, digits, '-', '_' and '.', each part 1-96 characters, starting and "
                "ending with a letter or digit, without '..' or '--'"
            )
        return value

    @field_validator("model_name")
    @classmethod
    def _model_name(cls, value: str) -> str:
        if not 1 <= len(value) <= 63 or not _MODEL_NAME.fullmatch(value):
            raise ValueError(
                "must be 1-63 characters of letters and digits, optionally separated by single '-' or '_' "
                "(Bedrock importedModelName rule ([0-9a-zA-Z][_-]?)+)"
            )
        return value

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str) -> str:
        if not _REVISION.fullmatch(value) or ".." in value or "//" in value or value.endswith("/"):
            raise ValueError(
                "must be a branch, tag or commit sha: letters, digits, '.', '_', '-' and '/', at most 255 "
                "characters, without '..' or '//'"
            )
        return value

    @field_validator("include", "exclude")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not 1 <= len(pattern) <= 256 or not _PATTERN_CHARS.fullmatch(pattern):
                raise ValueError(
                    f"pattern {pattern!r} must be 1-256 characters of letters, digits and . _ / * ? [ ] ! -"
                )
            if pattern.startswith("/") or ".." in pattern.split("/"):
                raise ValueError(f"pattern {pattern!r} must be relative to the repository root, without '..'")
        return value

    @field_validator("import_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.fullmatch(value):
            raise ValueError("must be an IAM role ARN: arn:aws:iam::ACCOUNT:role/NAME")
        return value


def parse_request(payload: Any) -> ImportRequest:
    """Validate the execution input; raise InvalidRequest naming every field and rule that failed."""
    if not isinstance(payload, dict):
        raise InvalidRequest(
            'execution input: must be a JSON object such as {"repo_id": "ORG/NAME", "model_name": "my-model"}'
        )
    secrets = sorted(_SECRET_FIELDS.intersection(payload))
    if secrets:
        raise InvalidRequest(
            f"{secrets[0]}: secrets are not accepted in the execution input (it is stored in the execution "
            "history); put the Hugging Face token in Secrets Manager and set the stack parameter HfTokenSecretArn"
        )
    try:
        return ImportRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "execution input"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a known field (see docs/execution-input.schema.json)"
        elif err["type"] == "missing":
            message = "is required"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)
