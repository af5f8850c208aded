"""The one rule engine behind the three sources: list the files, let every rule look, collect the findings."""

from __future__ import annotations

from modelferry.validation.options import ValidationOptions
from modelferry.validation.report import ValidationReport
from modelferry.validation.rules import RULES
from modelferry.validation.sources import Source
from modelferry.validation.view import ModelView


def validate(source: Source, options: ValidationOptions | None = None) -> ValidationReport:
    """Check a model against what Bedrock Custom Model Import accepts. Problems with the model are findings;
    only a failure to read the source raises (the source's own error)."""
    options = options or ValidationOptions()
    bytes_before, requests_before = source.bytes_read, source.read_requests
    view = ModelView(source, options.selection)
    findings = [found for rule in RULES for found in rule(view, options)]
    return ValidationReport(
        target=source.location,
        findings=findings,
        model_type=view.model_type,
        architectures=view.architectures,
        total_weight_bytes=view.total_weight_bytes,
        files_checked=len(view.files),
        headers_read=len(view.headers),
        bytes_read=source.bytes_read - bytes_before,
        read_requests=source.read_requests - requests_before,
        region=options.region,
        excluded=tuple((file.path, reason) for file, reason in view.excluded),
    )
