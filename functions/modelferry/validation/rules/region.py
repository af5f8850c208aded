"""Rules on where the import will run: the Regions Custom Model Import runs in, and an architecture's own limits."""

from __future__ import annotations

from collections.abc import Iterator

from modelferry.validation.bedrock import ARCHITECTURE_REGIONS, IMPORT_REGIONS
from modelferry.validation.findings import Finding, finding
from modelferry.validation.options import ValidationOptions
from modelferry.validation.view import ModelView


def import_region(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    region = options.region
    if region is None:
        return
    if region not in IMPORT_REGIONS:
        yield finding(
            "REGION_UNSUPPORTED",
            None,
            f"Custom Model Import does not run in {region}; it runs in {', '.join(sorted(IMPORT_REGIONS))}",
        )
        return
    allowed = ARCHITECTURE_REGIONS.get(view.model_type or "")
    if allowed and region not in allowed:
        yield finding(
            "ARCHITECTURE_REGION_UNSUPPORTED",
            None,
            f"{view.model_type} models import only in {', '.join(sorted(allowed))}; the import would run in {region}",
        )
