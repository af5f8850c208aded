"""docs/execution-input.schema.json: generated from ImportRequest, up to date, and in agreement with the rules the
first state applies (a console user or a form built from the schema sees the same contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from modelferry.errors import InvalidRequest
from modelferry.request import parse_request
from modelferry_cli import schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    document = json.loads(schema.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_the_committed_schema_is_the_generated_one() -> None:
    assert schema.SCHEMA_PATH.read_text() == schema.render(), "run: python -m modelferry_cli.schema"
    assert schema.main(["--check"]) == 0


def test_the_console_needs_only_repo_id_and_model_name(validator: jsonschema.Draft202012Validator) -> None:
    assert validator.schema["required"] == ["repo_id", "model_name"]
    assert validator.schema["additionalProperties"] is False
    assert set(validator.schema["properties"]) == set(parse_request({"repo_id": "a/b", "model_name": "m"}).model_dump())


@pytest.mark.parametrize("name", ["execution-input-minimal.json", "execution-input-full.json"])
def test_the_examples_are_the_events_files_and_both_sides_accept_them(
    validator: jsonschema.Draft202012Validator, name: str
) -> None:
    example = json.loads((ROOT / "events" / name).read_text())
    assert example in validator.schema["examples"]
    assert list(validator.iter_errors(example)) == []
    request = parse_request(example)
    assert request.model_dump(mode="json", exclude_unset=True) == example


@pytest.mark.parametrize(
    "payload",
    [
        {"repo_id": "no-slash", "model_name": "m"},
        {"repo_id": "a/b", "model_name": "has space"},
        {"repo_id": "a/b", "model_name": "x" * 64},
        {"repo_id": "a/b", "model_name": "a__b"},
        {"repo_id": "a/b", "model_name": "m", "revision": "-main"},
        {"repo_id": "a/b", "model_name": "m", "include": ["a b"]},
        {"repo_id": "a/b", "model_name": "m", "if_exists": "overwrite"},
        {"repo_id": "a/b", "model_name": "m", "import_role_arn": "role"},
        {"repo_id": "a/b", "model_name": "m", "verify_max_tokens": 0},
        {"repo_id": "a/b", "model_name": "m", "hf_token": "hf_x"},
        {"repo_id": "a/b", "model_name": "m", "bucket": "x"},
        {"model_name": "m"},
    ],
)
def test_what_the_first_state_refuses_the_schema_refuses(
    validator: jsonschema.Draft202012Validator, payload: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequest):
        parse_request(payload)
    assert list(validator.iter_errors(payload)), f"the schema accepts {payload}"


@pytest.mark.parametrize(
    "payload",
    [
        {"repo_id": "Tonic/med-gpt-oss-20b", "model_name": "med_gpt-oss_20b"},
        {"repo_id": "a.b/c_d-e", "model_name": "M1", "revision": "refs/pr/1", "include": ["*.json", "model-[0-9]*"]},
        {"repo_id": "a/b", "model_name": "m", "import_role_arn": "arn:aws:iam::123456789012:role/path/x+y=z"},
        {"repo_id": "a/b", "model_name": "m", "verify_expect": None},
    ],
)
def test_what_the_first_state_accepts_the_schema_accepts(
    validator: jsonschema.Draft202012Validator, payload: dict[str, Any]
) -> None:
    parse_request(payload)
    assert list(validator.iter_errors(payload)) == []
