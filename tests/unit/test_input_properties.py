"""Properties of the execution input rules, over inputs hypothesis makes up.

- Whatever JSON value arrives, `parse_request` accepts it or raises InvalidRequest: never another exception.
- What it accepts is safe to build S3 keys and Hub URLs from: no path traversal, no absolute path, no separator or
  control character where a path component goes; keys built from it stay under their prefix.
- One malformed field (traversal, absolute path, odd characters, wrong type, huge sizes) is refused with an error
  naming that field, and only that field.

These are the rules Plan applies first, before any side effect, and the request-file trigger applies to every
entry before it starts anything (tests/reliability/test_bad_input.py runs both through the local rig).
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from modelferry.adapters.s3 import join_prefix
from modelferry.errors import InvalidRequest
from modelferry.request import ImportRequest, parse_request
from modelferry.request_files import InvalidRequestFile, parse_request_file
from modelferry.selection import Selection

VALID = {"repo_id": "acme/gpt-oss-20b", "model_name": "gpt-oss-20b"}
FIELDS = ("repo_id", "model_name", "revision", "include", "exclude", "verify_max_tokens", "import_role_arn")
CONTROL = "".join(chr(c) for c in range(32)) + "\x7f"

# --- strategies -----------------------------------------------------------------------------------------------------

hub_name = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9_]|[.-](?=[A-Za-z0-9_])){0,40}[A-Za-z0-9]", fullmatch=True)
valid_repo_id = st.builds(lambda org, name: f"{org}/{name}", hub_name, hub_name).filter(
    lambda r: ".." not in r and "--" not in r
)
valid_model_name = st.from_regex(r"(?:[0-9a-zA-Z][_-]?){1,31}", fullmatch=True).filter(lambda n: len(n) <= 63)
valid_revision = st.one_of(
    st.sampled_from(["main", "v1.0", "refs/pr/1", "release-2025.08"]),
    st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
)
valid_pattern = st.sampled_from(["*.safetensors", "config.json", "tokenizer*", "model-0000[1-3]-*", "!x"])

# What an attacker or a typo puts where a path component goes.
traversal = st.sampled_from(
    [
        "..",
        "../x",
        "a/../b",
        "a/..",
        "/etc/passwd",
        "/abs",
        "./..",
        "..\\x",
        "a\\b",
        "C:\\x",
        "a//b",
        "~/x",
        "%2e%2e/x",
        "a/b/c",
        "",
        " ",
        "a b",
        "a\tb",
        "a\nb",
        "a\x00b",
        "ä/ö",
        "a/b\u202e",
        "\ufeffa/b",
        "x" * 300,
        "a/" + "b" * 200,
    ]
)
odd_text = st.text(alphabet=string.punctuation + CONTROL + " äöü\u202e\u200b", min_size=1, max_size=20)
wrong_type = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Inputs anywhere between valid and absurd: known fields with values from every strategy, unknown fields."""
    payload: dict[str, Any] = {}
    for name in FIELDS:
        if draw(st.booleans()):
            payload[name] = draw(st.one_of(json_values, traversal, odd_text, st.lists(traversal, max_size=3)))
    if draw(st.booleans()):
        payload.update(repo_id=draw(valid_repo_id), model_name=draw(valid_model_name))
    if draw(st.integers(0, 5)) == 0:
        payload[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    return payload


# --- properties -----------------------------------------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | requests())
def test_any_input_is_accepted_or_refused_as_invalid_request_never_a_crash(payload: Any) -> None:
    outcome = _parse(payload)  # any other exception fails the test

    if isinstance(outcome, InvalidRequest):
        assert ": " in str(outcome), str(outcome)  # "field: rule"
    else:
        assert_safe(outcome)


@settings(max_examples=200)
@given(valid_repo_id, valid_model_name, valid_revision, st.lists(valid_pattern, max_size=4))
def test_valid_inputs_are_accepted_and_safe(repo_id: str, model_name: str, revision: str, include: list[str]) -> None:
    request = parse_request({"repo_id": repo_id, "model_name": model_name, "revision": revision, "include": include})

    assert (request.repo_id, request.model_name, request.revision) == (repo_id, model_name, revision)
    assert_safe(request)


@pytest.mark.parametrize("field", ["repo_id", "model_name", "revision"])
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(traversal, odd_text, wrong_type))
@example(bad="x" * 100_000)
def test_a_malformed_name_is_refused_naming_that_field_only(field: str, bad: Any) -> None:
    assume(not (field == "revision" and isinstance(bad, str) and _plausible_revision(bad)))
    assume(not (field == "repo_id" and isinstance(bad, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", bad) and _hub_ok(bad)))

    with pytest.raises(InvalidRequest) as refused:
        parse_request({**VALID, field: bad})

    assert _fields_named(str(refused.value)) == {field}


@pytest.mark.parametrize("field", ["include", "exclude"])
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(traversal, st.text(alphabet=" \\\"'`$;|&<>{}~%#@:" + CONTROL, min_size=1, max_size=8)))
def test_a_malformed_pattern_is_refused_naming_its_field(field: str, bad: str) -> None:
    assume(not _pattern_ok(bad))

    with pytest.raises(InvalidRequest) as refused:
        parse_request({**VALID, field: ["*.safetensors", bad]})

    assert _fields_named(str(refused.value)) == {field}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("include", ["*.json"] * 65),  # more patterns than allowed
        ("exclude", ["x" * 257]),
        ("include", "*.safetensors"),  # a string, not a list
        ("verify_max_tokens", 10**12),
        ("verify_max_tokens", -1),
        ("verify_max_tokens", 4097),
        ("verify_prompt", "x" * 4001),
        ("verify_prompt", ""),
        ("verify_expect", "x" * 1001),
        ("model_name", "m" * 64),
        ("repo_id", "a/" + "b" * 97),
        ("revision", "r" * 256),
        ("import_role_arn", "arn:aws:iam::123456789012:role/" + "r" * 600),
        ("allow_quantized", {"yes": True}),
        ("if_exists", "overwrite"),
    ],
)
def test_huge_or_out_of_range_values_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_request({**VALID, field: value})

    assert _fields_named(str(refused.value)) == {field}


@given(json_values.filter(lambda v: not isinstance(v, dict)))
def test_anything_but_an_object_is_refused(payload: Any) -> None:
    with pytest.raises(InvalidRequest, match="execution input: must be a JSON object"):
        parse_request(payload)


# --- helpers --------------------------------------------------------------------------------------------------------


def assert_safe(request: ImportRequest) -> None:
    """What the workflow builds from an accepted request cannot leave its place."""
    for value in (request.repo_id, request.revision, request.model_name, *request.include, *request.exclude):
        assert not any(c in value for c in CONTROL + " \\"), value
        assert not value.startswith(("/", "~")), value
        assert ".." not in value.split("/"), value
        assert "//" not in value, value
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,63}", request.model_name)
    org, name = request.repo_id.split("/")
    assert org
    assert name
    prefix = join_prefix("models/", request.model_name, "0" * 40)
    assert prefix == f"models/{request.model_name}/{'0' * 40}/"
    Selection(include=request.include, exclude=request.exclude).exclusion_reason("config.json")


def _parse(payload: Any) -> ImportRequest | InvalidRequest:
    try:
        return parse_request(payload)
    except InvalidRequest as refused:
        return refused


def _parse_file(body: bytes) -> list[ImportRequest] | InvalidRequestFile:
    try:
        return parse_request_file(body)
    except InvalidRequestFile as refused:
        return refused


def _fields_named(message: str) -> set[str]:
    """The input fields an InvalidRequest message names: each problem is 'field: rule' or 'field.N: rule', joined
    with '; ' (a refused pattern is quoted in its rule, so only known field names count)."""
    known = "|".join(sorted({*FIELDS, *ImportRequest.model_fields}))
    return set(re.findall(rf"(?:^|; )({known})(?:\.\d+)?: ", message))


def _hub_ok(repo_id: str) -> bool:
    return all(
        re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?", part) for part in repo_id.split("/")
    ) and not ({"..", "--"} & {repo_id[i : i + 2] for i in range(len(repo_id))})


def _plausible_revision(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}", value)) and not (
        ".." in value or "//" in value or value.endswith("/")
    )


def _pattern_ok(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9._/*?\[\]!-]{1,256}", value)) and not (
        value.startswith("/") or ".." in value.split("/")
    )


# --- the request file (requests/*.json in the model bucket) ------------------------------------------------------


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        requests().map(lambda r: json.dumps(r).encode()),
        st.lists(requests(), max_size=4).map(lambda rs: json.dumps({"requests": rs}).encode()),
    )
)
def test_any_request_file_is_parsed_or_refused_as_invalid_request_never_a_crash(body: bytes) -> None:
    outcome = _parse_file(body)  # any other exception fails the test

    if isinstance(outcome, InvalidRequestFile):
        assert outcome.problems
        assert all(": " in problem for problem in outcome.problems)
    else:
        assert outcome
        for request in outcome:
            assert_safe(request)


@pytest.mark.parametrize("field", ["repo_id", "model_name", "revision", "include"])
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=traversal, index=st.integers(0, 3))
def test_one_bad_entry_in_a_request_file_is_named_by_index_and_field(field: str, bad: str, index: int) -> None:
    value: Any = [bad] if field == "include" else bad
    assume(_parse({**VALID, field: value}).__class__ is InvalidRequest)
    entries = [{**VALID, "model_name": f"model-{i}"} for i in range(4)]
    entries[index] = {**entries[index], field: value}

    with pytest.raises(InvalidRequestFile) as refused:
        parse_request_file(json.dumps({"requests": entries}).encode())

    (problem,) = refused.value.problems
    assert problem.startswith(f"requests[{index}]: {field}")


def test_a_request_file_larger_than_an_execution_input_is_refused_unread() -> None:
    body = json.dumps({"requests": [VALID], "padding": "x" * 300_000}).encode()

    with pytest.raises(InvalidRequestFile, match="more than the 262144 allowed"):
        parse_request_file(body)
