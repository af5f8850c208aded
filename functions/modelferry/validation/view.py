"""What the rules see: the files that will be copied, the ones that will not, and the parsed small files and
safetensors headers, each read at most once and only when a rule asks."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from modelferry.selection import (
    CONFIG_FILE,
    INDEX_FILE,
    SAFETENSORS_SUFFIX,
    Selection,
)
from modelferry.validation.bedrock import (
    ADAPTER_CONFIG_FILE,
)
from modelferry.validation.safetensors_header import HeaderError, SafetensorsHeader, read_header
from modelferry.validation.sources import FileTooLargeError, Source, SourceFile

# Header reads are two small requests each; on the Hub or S3 latency dominates, so overlap them.
HEADER_READ_THREADS = 8
# Reads of a header that does not parse before it is reported: the first and two re-reads.
HEADER_READS = 3


@dataclass(frozen=True)
class JsonFile:
    present: bool
    data: dict[str, Any] | None = None
    error: str | None = None  # why a present file could not be used


class ModelView:
    def __init__(self, source: Source, selection: Selection) -> None:
        self.source = source
        # Every file at the source, copied or not: some rules recognise a repository by files it will not copy
        # (an adapter_config.json, sentence-transformers modules).
        self.listed: dict[str, SourceFile] = {file.path: file for file in source.list_files()}
        self.excluded: list[tuple[SourceFile, str]] = []
        self.files: dict[str, SourceFile] = {}
        self._json: dict[str, JsonFile] = {}
        # The allow-list copies the shards the index names, so the index is read first (when it is copied at all).
        index_shards = None
        if INDEX_FILE in self.listed and selection.exclusion_reason(INDEX_FILE) is None:
            self.files[INDEX_FILE] = self.listed[INDEX_FILE]
            index_shards = frozenset(self.weight_map.values()) if self.weight_map else None
        for file in self.listed.values():
            reason = selection.exclusion_reason(file.path, index_shards)
            if reason:
                self.excluded.append((file, reason))
            else:
                self.files[file.path] = file

    def lists(self, path: str) -> bool:
        """Whether the source holds `path`, copied or not."""
        return path in self.listed

    def has(self, path: str) -> bool:
        return path in self.files

    def json(self, path: str) -> JsonFile:
        """A small JSON object file that will be copied (config, index, tokenizer config...)."""
        return self.listed_json(path) if self.has(path) else JsonFile(present=False)

    def listed_json(self, path: str) -> JsonFile:
        """A small JSON object file at the source, copied or not (an adapter_config.json)."""
        if path not in self._json:
            self._json[path] = self._load_json(path)
        return self._json[path]

    def _load_json(self, path: str) -> JsonFile:
        if not self.lists(path):
            return JsonFile(present=False)
        try:
            data = json.loads(self.source.read_file(path))
        except FileTooLargeError as exc:
            return JsonFile(present=True, error=str(exc))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return JsonFile(present=True, error=f"{path} is not valid JSON: {exc}")
        if not isinstance(data, dict):
            return JsonFile(present=True, error=f"{path} is not a JSON object")
        return JsonFile(present=True, data=data)

    @cached_property
    def config(self) -> dict[str, Any] | None:
        """config.json when it is usable (an object with a string `model_type`), else None."""
        data = self.json(CONFIG_FILE).data
        return data if data is not None and isinstance(data.get("model_type"), str) else None

    @property
    def model_type(self) -> str | None:
        return self.config["model_type"] if self.config else None

    @property
    def architectures(self) -> list[str]:
        listed = self.config.get("architectures") if self.config else None
        return [a for a in listed if isinstance(a, str)] if isinstance(listed, list) else []

    @cached_property
    def weight_map(self) -> dict[str, str] | None:
        """The index's tensor -> shard map when the index is usable, else None."""
        index = self.json(INDEX_FILE).data
        weight_map = index.get("weight_map") if index else None
        if not isinstance(weight_map, dict) or not weight_map:
            return None
        return weight_map if all(isinstance(shard, str) for shard in weight_map.values()) else None

    @cached_property
    def is_adapter_repository(self) -> bool:
        """A PEFT adapter (adapter_config.json) with no model weights of its own to copy."""
        model_weights = [path for path in self.safetensors if not path.rpartition("/")[2].startswith("adapter_model")]
        return self.lists(ADAPTER_CONFIG_FILE) and not model_weights

    @cached_property
    def safetensors(self) -> list[str]:
        return sorted(path for path in self.files if path.endswith(SAFETENSORS_SUFFIX))

    @property
    def total_weight_bytes(self) -> int:
        return sum(self.files[path].size for path in self.safetensors)

    @cached_property
    def headers(self) -> dict[str, SafetensorsHeader | HeaderError]:
        """The header of every .safetensors file that will be copied, or why it is unreadable."""
        with ThreadPoolExecutor(max_workers=HEADER_READ_THREADS) as pool:
            return dict(zip(self.safetensors, pool.map(self._read_header, self.safetensors), strict=True))

    def _read_header(self, path: str) -> SafetensorsHeader | HeaderError:
        """The header, read again when it does not parse: a byte flipped on the way (a CDN edge, a proxy) does not
        come back on the next read, a broken header does, `HEADER_READS` times in a row."""
        error = HeaderError(f"{path}: not read")
        for _ in range(HEADER_READS):
            try:
                return read_header(
                    lambda start, length: self.source.read_range(path, start, length), self.files[path].size
                )
            except HeaderError as exc:
                error = exc
        return error
