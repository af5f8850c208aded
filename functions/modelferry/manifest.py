"""The file manifest: what Plan decided to copy, where to, and how to check it.

The manifest lives in S3 (it can outgrow the 256 KiB state limit); the Distributed Map reads `files.json` (a JSON
array of CopyItem) and hands one item to each copy task.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Object metadata written by the copy stage (S3 lowercases user metadata keys).
META_SHA256 = "sha256"
META_BLOB_SHA1 = "git-blob-sha1"
META_SOURCE_COMMIT = "source-commit"
META_SOURCE_REPO = "source-repo"
# Set by Validate in S3 on a file it rewrote (the index): what the object holds now, beside the Hub's checksum.
META_FIXED_SHA256 = "fixed-sha256"


class ManifestEntry(BaseModel):
    """One file to copy from the Hub to S3."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Path inside the Hub repository, e.g. 'model-00001-of-00009.safetensors'.")
    size: int = Field(ge=0, description="Size in bytes as published by the Hub.")
    sha256: str | None = Field(default=None, description="LFS sha256 (hex) for LFS files, else None.")
    blob_id: str | None = Field(default=None, description="Git blob sha1 (hex) for non-LFS files.")
    key: str = Field(description="Destination S3 key.")
    runner: Literal["lambda", "fargate"] = "lambda"


class ExcludedFile(BaseModel):
    path: str
    size: int
    reason: str


class RunContext(BaseModel):
    """What every copy task needs to know about its run (small: it is repeated in every Map item)."""

    repo_id: str
    commit: str
    bucket: str
    run_id: str
    failures_prefix: str = Field(
        default="", description="Where a failed copy records its error, for the failure notification."
    )


class CopyItem(BaseModel):
    """One Distributed Map item: the file and its run."""

    file: ManifestEntry
    run: RunContext


class Manifest(BaseModel):
    repo_id: str
    revision: str
    commit: str
    bucket: str
    model_prefix: str = Field(description="S3 key prefix the model is copied under; ends with '/'.")
    files: list[ManifestEntry]
    excluded: list[ExcludedFile] = []

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)
