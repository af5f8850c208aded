"""The execution input: two fields are enough, every rule error names its field, secrets are refused."""

from __future__ import annotations

import pytest

from modelferry.errors import InvalidRequest
from modelferry.request import DEFAULT_VERIFY_PROMPT, parse_request


def test_two_fields_are_enough_and_defaults_apply() -> None:
    request = parse_request({"repo_id": "Tonic/med-gpt-oss-20b", "model_name": "med-gpt-oss-20b"})
    assert request.revision == "main"
    assert request.if_exists == "fail"
    assert request.verify_prompt == DEFAULT_VERIFY_PROMPT
    assert request.include == ()
    assert request.allow_quantized is False


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model_name": "m"}, "repo_id: is required"),
        ({"repo_id": "a/b"}, "model_name: is required"),
        ({"repo_id": "no-slash", "model_name": "m"}, "repo_id: must be ORG/NAME"),
        ({"repo_id": "a/../b", "model_name": "m"}, "repo_id:"),
        ({"repo_id": "a/b--c", "model_name": "m"}, "repo_id:"),
        ({"repo_id": "a/b", "model_name": "has space"}, "model_name: must be 1-63"),
        ({"repo_id": "a/b", "model_name": "x" * 64}, "model_name: must be 1-63"),
        ({"repo_id": "a/b", "model_name": "a__b"}, "model_name:"),
        ({"repo_id": "a/b", "model_name": "m", "revision": "../main"}, "revision:"),
        ({"repo_id": "a/b", "model_name": "m", "revision": "a//b"}, "revision:"),
        ({"repo_id": "a/b", "model_name": "m", "include": ["/etc/*"]}, "include:"),
        ({"repo_id": "a/b", "model_name": "m", "exclude": ["../x"]}, "exclude:"),
        ({"repo_id": "a/b", "model_name": "m", "exclude": ["a b"]}, "exclude:"),
        ({"repo_id": "a/b", "model_name": "m", "if_exists": "overwrite"}, "if_exists:"),
        ({"repo_id": "a/b", "model_name": "m", "import_role_arn": "role"}, "import_role_arn: must be an IAM role ARN"),
        ({"repo_id": "a/b", "model_name": "m", "verify_max_tokens": 0}, "verify_max_tokens:"),
        ({"repo_id": "a/b", "model_name": "m", "bucket": "x"}, "bucket: is not a known field"),
    ],
)
def test_each_rule_error_names_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request(payload)
    assert field in str(raised.value)


def test_a_token_in_the_input_is_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request({"repo_id": "a/b", "model_name": "m", "hf_token": "hf_secretvalue123"})
    assert "hf_token" in str(raised.value)
    assert "Secrets Manager" in str(raised.value)
    assert "hf_secretvalue123" not in str(raised.value)


def test_errors_never_echo_input_values() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request({"repo_id": "evil/<script>", "model_name": "m"})
    assert "<script>" not in str(raised.value)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="execution input"):
        parse_request(["repo_id", "model_name"])
