"""Validation: every rule Bedrock Custom Model Import enforces, checked on the Hub before the copy, on the S3
prefix after it (where fixable findings are repaired), or on a local folder. Reads small files and safetensors
headers only. Finding codes are documented in docs/validation.md."""

from modelferry.validation.engine import validate
from modelferry.validation.findings import CODES, Finding, Severity
from modelferry.validation.fixes import AppliedFix, apply_fixes
from modelferry.validation.options import ValidationOptions
from modelferry.validation.report import ValidationReport
from modelferry.validation.sources import HubRepoSource, LocalFolderSource, S3PrefixSource, Source, WritableSource

__all__ = [
    "CODES",
    "AppliedFix",
    "Finding",
    "HubRepoSource",
    "LocalFolderSource",
    "S3PrefixSource",
    "Severity",
    "Source",
    "ValidationOptions",
    "ValidationReport",
    "WritableSource",
    "apply_fixes",
    "validate",
]
