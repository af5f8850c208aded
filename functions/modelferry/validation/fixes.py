"""Repairs for `fixable` findings, applied in place to a local folder or an S3 prefix: the index `metadata` Bedrock
accepts, the GPT-OSS end-of-sequence ids AWS documents, and a stale `quantization_config` removed.

A fix is a pure function of the file's bytes that returns None when there is nothing to change, which makes
apply_fixes idempotent: a second run (or a Step Functions retry after a crash) finds clean files and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelferry.validation.bedrock import GPT_OSS_EOS_IDS
from modelferry.validation.findings import Severity
from modelferry.validation.report import ValidationReport
from modelferry.validation.sources import Source, WritableSource


@dataclass(frozen=True)
class AppliedFix:
    path: str
    rule_code: str
    original_sha256: str  # what the Hub published (and the backup holds)
    fixed_sha256: str  # what Bedrock will read
    backup: str

    def to_json_dict(self) -> dict[str, str]:
        return {
            "path": self.path,
            "rule_code": self.rule_code,
            "original_sha256": self.original_sha256,
            "fixed_sha256": self.fixed_sha256,
            "backup": self.backup,
        }


def clean_index_metadata(metadata: object) -> dict[str, Any]:
    """The index `metadata` Bedrock accepts: `{}` or only an integer `total_size`. The rule flags any metadata
    this changes, so the check and the fix cannot disagree."""
    if isinstance(metadata, dict) and type(metadata.get("total_size")) is int:
        return {"total_size": metadata["total_size"]}
    return {}


def fix_index_metadata(original: bytes) -> bytes | None:
    index = json.loads(original)
    metadata = clean_index_metadata(index.get("metadata"))
    if index.get("metadata") == metadata:
        return None
    # `metadata` first, as transformers writes it; the weight_map and anything else stay as they were.
    fixed = {"metadata": metadata, **{key: value for key, value in index.items() if key != "metadata"}}
    return _json_bytes(fixed)


def fix_gpt_oss_eos_ids(original: bytes) -> bytes | None:
    """generation_config.json with the three end-of-sequence ids AWS documents for GPT-OSS, in its order; any other
    id the file listed is kept after them. None when all three are there already."""
    config = json.loads(original)
    eos = config.get("eos_token_id")
    listed = eos if isinstance(eos, list) else [eos]
    if all(token in listed for token in GPT_OSS_EOS_IDS):
        return None
    others = [token for token in listed if isinstance(token, int) and token not in GPT_OSS_EOS_IDS]
    config["eos_token_id"] = [*GPT_OSS_EOS_IDS, *others]
    return _json_bytes(config)


def fix_stale_quantization_config(original: bytes) -> bytes | None:
    """config.json without `quantization_config`; the rule decides it is stale (the tensors are not quantized)."""
    config = json.loads(original)
    if "quantization_config" not in config:
        return None
    del config["quantization_config"]
    return _json_bytes(config)


def _json_bytes(document: dict[str, Any]) -> bytes:
    # Keys stay in the file's order; two-space indent and a final newline, as transformers writes these files.
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


FIXES: dict[str, Callable[[bytes], bytes | None]] = {
    "INDEX_METADATA_MISSING": fix_index_metadata,
    "INDEX_METADATA_FIELD_UNSUPPORTED": fix_index_metadata,
    "GENERATION_CONFIG_EOS": fix_gpt_oss_eos_ids,
    "QUANTIZATION_CONFIG_STALE": fix_stale_quantization_config,
}


def apply_fixes(source: Source, report: ValidationReport, backup_prefix: str | None = None) -> list[AppliedFix]:
    """Apply the fix of every `fixable` finding of `report`; each changed file is backed up first (S3: under
    `backup_prefix`, by default a sibling prefix `<model prefix>.orig/`; local folder: `<file>.orig`)."""
    if not isinstance(source, WritableSource):
        raise TypeError(f"{source.location} is read-only: fixes apply to a local folder or an S3 prefix")
    applied = []
    targets = dict.fromkeys((f.path, f.code) for f in report.findings if f.severity is Severity.FIXABLE and f.path)
    for path, code in targets:
        original = source.read_file(path)
        fixed = FIXES[code](original)
        if fixed is None:
            continue
        backup = source.replace_file(path, original, fixed, backup_prefix)
        applied.append(AppliedFix(path, code, _sha256(original), _sha256(fixed), backup))
    return applied


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
