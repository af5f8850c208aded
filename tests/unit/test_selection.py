from __future__ import annotations

import pytest

from modelferry.selection import Selection


@pytest.mark.parametrize(
    ("path", "copied"),
    [
        ("config.json", True),
        ("model-00001-of-00003.safetensors", True),
        ("model.safetensors.index.json", True),
        ("tokenizer.json", True),
        ("chat_template.jinja", True),
        ("metal/model.bin", False),
        ("original/model.safetensors", False),
        (".gitattributes", False),
        ("README.md", False),
        ("pytorch_model.bin", False),
        ("consolidated.safetensors", False),
    ],
)
def test_defaults_keep_what_bedrock_reads(path: str, copied: bool) -> None:
    assert (Selection().exclusion_reason(path) is None) is copied


def test_include_restricts_and_exclude_adds() -> None:
    selection = Selection(include=("*.json", "*.safetensors"), exclude=("tokenizer*",))
    assert selection.exclusion_reason("config.json") is None
    assert selection.exclusion_reason("chat_template.jinja") == "not matched by `include`"
    assert "exclude" in (selection.exclusion_reason("tokenizer.json") or "")
    assert selection.exclusion_reason("metal/model.safetensors") is not None  # defaults still apply
