"""Rules on the file list as a whole."""

from __future__ import annotations

from collections.abc import Iterator

from modelferry.validation.findings import Finding, finding
from modelferry.validation.options import ValidationOptions
from modelferry.validation.view import ModelView


def excluded_paths(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    for file, reason in view.excluded:
        yield finding("PATH_EXCLUDED", file.path, f"{reason} ({file.size:,} bytes)")
