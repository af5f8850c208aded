from __future__ import annotations

from dataclasses import dataclass, field

from modelferry.selection import Selection


@dataclass(frozen=True)
class ValidationOptions:
    # Quantized checkpoints are unsupported unless the user takes the risk: AWS documents none that imports.
    allow_quantized: bool = False
    # The files that will be copied: the rules look at these only, and report the rest as PATH_EXCLUDED.
    selection: Selection = field(default_factory=Selection)
    # The Region the import will run in (the stack's, or `modelferry validate --region`); None skips the Region rules.
    region: str | None = None
