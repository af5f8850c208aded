"""`modelferry run-local --batch FILE` refuses a bad request file before starting anything (no rig is built)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from modelferry_cli import run_local_batch


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ({"requests": [{"repo_id": "a/b", "model_name": "same"}, {"repo_id": "a/c", "model_name": "same"}]}, "same"),
        ({"requests": [{"repo_id": "a/b"}]}, "model_name"),
        ("not json", "not valid UTF-8 JSON"),
    ],
)
def test_a_bad_batch_file_is_refused_with_the_reason(tmp_path: Path, document: object, said: str) -> None:
    path = tmp_path / "batch.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    out = io.StringIO()

    status = run_local_batch.run(path, as_json=False, imported_models_quota=None, out=out)

    assert status == run_local_batch.EXIT_USAGE
    assert said in out.getvalue()
    assert "Batch:" not in out.getvalue()  # nothing started


def test_a_missing_batch_file_is_refused(tmp_path: Path) -> None:
    out = io.StringIO()
    status = run_local_batch.run(tmp_path / "none.json", as_json=False, imported_models_quota=None, out=out)
    assert status == run_local_batch.EXIT_USAGE
    assert "cannot read it" in out.getvalue()


def test_other_repositories_need_a_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"repo_id": "acme/elsewhere", "model_name": "x"}))
    out = io.StringIO()
    assert run_local_batch.run(path, as_json=False, imported_models_quota=None, out=out) == run_local_batch.EXIT_USAGE
    assert "acme/elsewhere need HF_ENDPOINT" in out.getvalue()
