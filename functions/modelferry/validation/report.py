"""The outcome of one validation: findings plus the few facts about the model the workflow and the CLI print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from modelferry.validation.findings import Finding, Severity

Verdict = Literal["ok", "fixable", "failed"]


@dataclass(frozen=True)
class ValidationReport:
    target: str
    findings: list[Finding]
    model_type: str | None
    architectures: list[str] = field(default_factory=list)
    total_weight_bytes: int = 0  # .safetensors files that will be copied
    files_checked: int = 0  # files that will be copied (excluded ones are PATH_EXCLUDED findings)
    headers_read: int = 0
    bytes_read: int = 0  # everything this validation read: small files and safetensors headers, never weights
    read_requests: int = 0
    region: str | None = None  # the Region the Region rules checked, None when they did not run
    # (path, reason) of every file that will not be copied: Plan's manifest lists them (the findings say it too).
    excluded: tuple[tuple[str, str], ...] = ()

    @property
    def verdict(self) -> Verdict:
        severities = {f.severity for f in self.findings}
        if Severity.ERROR in severities:
            return "failed"
        if Severity.FIXABLE in severities:
            return "fixable"
        return "ok"

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity is severity]

    def error_summary(self, limit: int = 5, whole: str = "repository") -> str:
        """The first `limit` errors, one clause each, for an error message."""
        errors = self.by_severity(Severity.ERROR)
        shown = "; ".join(f"{f.code} ({f.path or whole}): {f.message}" for f in errors[:limit])
        more = f"; and {len(errors) - limit} more" if len(errors) > limit else ""
        return shown + more

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "target": self.target,
            "findings": [f.to_json_dict() for f in self.findings],
            "counts": {s.value: len(self.by_severity(s)) for s in Severity},
            "model_type": self.model_type,
            "architectures": self.architectures,
            "total_weight_bytes": self.total_weight_bytes,
            "files_checked": self.files_checked,
            "headers_read": self.headers_read,
            "bytes_read": self.bytes_read,
            "read_requests": self.read_requests,
            "region": self.region,
        }
