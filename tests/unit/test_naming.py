"""Job names and tokens: always valid for Bedrock, derived from the execution (so retries repeat them)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelferry.naming import (
    CLIENT_REQUEST_TOKEN_PATTERN,
    JOB_NAME_MAX,
    JOB_NAME_PATTERN,
    client_request_token,
    import_job_name,
    run_id,
)

# Every model name the request accepts: Bedrock's importedModelName rule, 1-63 characters.
model_names = st.from_regex(r"(?:[0-9a-zA-Z][_-]?){1,40}", fullmatch=True).filter(lambda n: len(n) <= 63)
execution_ids = st.text(min_size=1, max_size=300)

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:modelferry:run-1"


@given(model_names, execution_ids)
def test_job_names_always_fit_bedrocks_pattern_and_length(model_name: str, execution_id: str) -> None:
    name = import_job_name(model_name, execution_id)
    assert JOB_NAME_PATTERN.fullmatch(name), name
    assert len(name) <= JOB_NAME_MAX
    assert "_" not in name


@given(execution_ids)
def test_tokens_always_fit_bedrocks_pattern(execution_id: str) -> None:
    token = client_request_token(execution_id)
    assert CLIENT_REQUEST_TOKEN_PATTERN.fullmatch(token)
    assert len(token) <= 256


def test_the_same_execution_gives_the_same_name_and_token() -> None:
    assert import_job_name("my-model", EXECUTION) == import_job_name("my-model", EXECUTION)
    assert client_request_token(EXECUTION) == client_request_token(EXECUTION)


def test_another_execution_gives_another_name_and_token() -> None:
    other = EXECUTION.replace("run-1", "run-2")
    assert import_job_name("my-model", EXECUTION) != import_job_name("my-model", other)
    assert client_request_token(EXECUTION) != client_request_token(other)


def test_the_name_reads_as_the_model_and_ends_with_the_execution_suffix() -> None:
    name = import_job_name("Llama_3__8B-instruct", EXECUTION)
    assert re.fullmatch(r"mf-Llama-3-8B-instruct-[0-9a-f]{10}", name), name


def test_a_63_character_model_name_is_cut_and_keeps_its_suffix() -> None:
    long_name = "a" * 30 + "_" + "b" * 32
    name = import_job_name(long_name, EXECUTION)
    assert len(name) == JOB_NAME_MAX
    assert name.startswith("mf-" + "a" * 30 + "-b")
    assert name.endswith(import_job_name("x", EXECUTION)[-11:])


def test_run_ids_are_path_safe() -> None:
    assert run_id("my run/1") == "my-run-1"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", run_id("ünïcode:name"))


@pytest.mark.parametrize("name", ["", ".", "..", "..."])
def test_run_id_never_is_a_dot_segment(name: str) -> None:
    assert run_id(name).strip(".") != ""
    assert run_id(name) == run_id(name)  # stable for the same execution
