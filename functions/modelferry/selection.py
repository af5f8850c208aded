"""Which repository files are copied: default exclusions plus the user's include/exclude patterns.

Patterns are shell-style (fnmatch) and match the whole path inside the repository; `*` also crosses `/`, so
`metal/*` excludes everything below `metal/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

# Why each default exists: Bedrock reads config, tokenizer, template and safetensors weights; everything else is
# dead weight at best (docs, images) and at worst confuses the import (metal/ and original/ carry a second copy of
# the weights in other formats, not described by the index).
DEFAULT_EXCLUDES: tuple[tuple[str, str], ...] = (
    ("metal/*", "Apple Metal weights: not used by Bedrock"),
    ("original/*", "original-format weights, not described by the index"),
    (".gitattributes", "git metadata"),
    ("consolidated*.safetensors", "Mistral-format weights, not described by the index"),
    ("*.md", "documentation"),
    ("LICENSE*", "documentation"),
    ("USE_POLICY*", "documentation"),
    ("*.png", "image"),
    ("*.jpg", "image"),
    ("*.jpeg", "image"),
    ("*.gif", "image"),
    ("*.pdf", "documentation"),
    ("*.bin", "non-safetensors weights: Bedrock imports only .safetensors"),
    ("*.pt", "non-safetensors weights: Bedrock imports only .safetensors"),
    ("*.pth", "non-safetensors weights: Bedrock imports only .safetensors"),
    ("*.gguf", "non-safetensors weights: Bedrock imports only .safetensors"),
    ("*.onnx", "non-safetensors weights: Bedrock imports only .safetensors"),
    ("*.h5", "non-safetensors weights: Bedrock imports only .safetensors"),
    ("*.msgpack", "non-safetensors weights: Bedrock imports only .safetensors"),
    ("*.ckpt", "non-safetensors weights: Bedrock imports only .safetensors"),
)


@dataclass(frozen=True)
class Selection:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def exclusion_reason(self, path: str) -> str | None:
        """Why `path` is not copied, or None when it is."""
        if self.include and not any(fnmatchcase(path, pattern) for pattern in self.include):
            return "not matched by `include`"
        for pattern in self.exclude:
            if fnmatchcase(path, pattern):
                return f"matched by `exclude` pattern {pattern!r}"
        for pattern, reason in DEFAULT_EXCLUDES:
            if fnmatchcase(path, pattern):
                return reason
        return None
