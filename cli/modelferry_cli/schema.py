"""docs/execution-input.schema.json, generated from `modelferry.request.ImportRequest` (the model the first state
validates the input with), with the rules the validators check added as patterns, and the examples from events/.

`python -m modelferry_cli.schema` rewrites the file; tests/unit/test_cli_schema.py fails when it is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from modelferry import request as request_module
from modelferry.request import ImportRequest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "docs" / "execution-input.schema.json"
EXAMPLE_FILES = ("events/execution-input-minimal.json", "events/execution-input-full.json")

# Descriptions for fields whose Field() has none, and the patterns of request.py's validators (JSON Schema
# patterns are ECMA-262 regexes, unanchored: hence ^...$). The validators also refuse '..' and '--' in repo_id
# and '..' or '//' in revision, which a pattern does not say; the descriptions do.
EXTRA: dict[str, dict[str, Any]] = {
    "repo_id": {
        "pattern": f"^{request_module._REPO_ID.pattern}$",
        "description": "Hugging Face repository, ORG/NAME: letters, digits, '-', '_', '.', without '..' or '--'.",
        "examples": ["openai/gpt-oss-20b"],
    },
    "model_name": {
        "pattern": f"^{request_module._MODEL_NAME.pattern}$",
        "maxLength": 63,
        "minLength": 1,
        "description": (
            "Name of the imported model in Bedrock (importedModelName rule ([0-9a-zA-Z][_-]?)+, 1-63 characters); "
            "also names the S3 folder."
        ),
        "examples": ["gpt-oss-20b"],
    },
    "revision": {
        "pattern": f"^{request_module._REVISION.pattern}$",
        "description": "Branch, tag or commit sha, without '..' or '//'; pinned to a commit at planning.",
    },
    "include": {"items": {"pattern": f"^{request_module._PATTERN_CHARS.pattern}$", "minLength": 1, "maxLength": 256}},
    "exclude": {"items": {"pattern": f"^{request_module._PATTERN_CHARS.pattern}$", "minLength": 1, "maxLength": 256}},
    "verify_prompt": {"description": "Prompt of the one InvokeModel call that verifies the imported model."},
    "verify_expect": {"description": "Text the verification reply must contain (case-sensitive); null: any reply."},
    "verify_max_tokens": {"description": "max_tokens of the verification call."},
    "import_role_arn": {
        "description": "Overrides the stack's import role (arn:aws:iam::ACCOUNT:role/NAME); the caller needs "
        "iam:PassRole on it.",
        "anyOf": [{"type": "string", "pattern": f"^{request_module._ROLE_ARN.pattern}$"}, {"type": "null"}],
    },
    "if_exists": {
        "description": "When an imported model of that name exists: fail, reuse it (verify only) or replace it."
    },
    "allow_quantized": {"description": "Import a checkpoint with a quantization_config (undocumented by AWS)."},
}


def execution_input_schema() -> dict[str, Any]:
    schema = ImportRequest.model_json_schema()
    for name, extra in EXTRA.items():
        field = schema["properties"][name]
        for key, value in extra.items():
            if key == "items":
                field["items"] = {**field["items"], **value}
            else:
                field[key] = value
    examples = [json.loads((REPO_ROOT / path).read_text()) for path in EXAMPLE_FILES]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "modelferry execution input",
        "description": (
            "Input of the modelferry state machine: typed in the console's Start execution, sent as the detail of a "
            "ModelImportRequested event (source modelferry.requests), or one entry of a request file under "
            "requests/ in the model bucket. Only repo_id and model_name are required. Generated from "
            "functions/modelferry/request.py by `python -m modelferry_cli.schema`; do not edit by hand."
        ),
        **{k: v for k, v in schema.items() if k not in {"title", "description"}},
        "examples": examples,
    }


def render() -> str:
    return json.dumps(execution_input_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.is_file() else ""
        if current != text:
            print(f"{SCHEMA_PATH.relative_to(REPO_ROOT)} is out of date: run python -m modelferry_cli.schema")
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
