"""The local Hub's fault switchboard: faults armed at run time, each firing on the requests it matches."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal[
    "rate_limit", "server_error", "reset_after", "truncate", "corrupt", "ignore_range", "forbidden_gated", "expired_url"
]
Endpoint = Literal["api", "resolve", "cdn"]

_FAULT_PARAMS: dict[str, dict[str, int | None]] = {  # accepted parameters and their defaults
    "rate_limit": {"reset_seconds": 1},
    "server_error": {"status": 500},
    "reset_after": {"after_bytes": 0},
    "truncate": {"after_bytes": None},  # None: half of the body
    "corrupt": {"offset": 0},
    "ignore_range": {},
    "forbidden_gated": {},
    "expired_url": {"status": 403},
}
STATUS_FAULTS = frozenset({"rate_limit", "server_error", "forbidden_gated", "expired_url"})
STREAM_FAULTS = frozenset({"reset_after", "truncate", "corrupt"})


@dataclass
class Fault:
    """One armed fault. `remaining` counts down per matching request (None: forever); `hits` counts up."""

    kind: FaultKind
    path_glob: str
    on: frozenset[str]
    remaining: int | None
    params: dict[str, Any]
    one_in: int = 1
    hits: int = 0
    seen: int = 0  # matching requests, fired on or not


class Faults:
    """Faults armed at run time: each applies to the first `times` requests that match it, then disarms.

    `path_glob` is matched against the repo file path for resolve and CDN requests, against the URL path for API
    requests. `on` picks the endpoints ("resolve", "cdn", "api"). Parameters per kind (defaults in brackets):
    rate_limit(reset_seconds [1]) answers 429 with the Hub's RateLimit headers; server_error(status [500]);
    reset_after(after_bytes [0]) sends the headers and that many body bytes then resets the connection;
    truncate(after_bytes [half]) declares the full Content-Length, sends fewer bytes and closes;
    corrupt(offset [0]) flips one byte at that offset of the body (the last byte if the body is shorter);
    ignore_range answers a Range request with 200 and the whole body; forbidden_gated answers 403 GatedRepo;
    expired_url(status [403]) answers as a CDN does to a signed URL past its expiry (403, or 410 from the Xet bridge).
    Body faults only count requests that carry a body (a HEAD or a redirect never consumes them).
    `one_in=N` makes a fault fire on one matching request in N (the 1st, the N+1th...): with `times=None`, a steady
    share of the traffic, as the Hub answers under load.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []

    def add(
        self,
        kind: FaultKind,
        *,
        path_glob: str = "*",
        times: int | None = 1,
        on: Iterable[Endpoint] = ("resolve", "cdn"),
        one_in: int = 1,
        **params: int,
    ) -> Fault:
        if kind not in _FAULT_PARAMS:
            raise ValueError(f"unknown fault kind {kind!r}: expected one of {sorted(_FAULT_PARAMS)}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for every request), got {times}")
        if one_in < 1:
            raise ValueError(f"one_in must be at least 1 (fire on every matching request), got {one_in}")
        unknown = set(params) - set(_FAULT_PARAMS[kind])
        if unknown:
            raise TypeError(f"fault {kind!r} takes {sorted(_FAULT_PARAMS[kind])}, not {sorted(unknown)}")
        fault = Fault(kind, path_glob, frozenset(on), times, _FAULT_PARAMS[kind] | params, one_in)
        with self._lock:
            self._armed.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def take(self, kinds: Iterable[str], endpoint: Endpoint, path: str) -> Fault | None:
        """The first armed fault of one of `kinds` matching this request, counted as fired."""
        kinds = frozenset(kinds)
        with self._lock:
            for fault in self._armed:
                if fault.kind in kinds and endpoint in fault.on and fnmatch.fnmatchcase(path, fault.path_glob):
                    fault.seen += 1
                    if (fault.seen - 1) % fault.one_in:  # a steady share: the 1st, (n+1)th... matching request
                        continue
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._armed.remove(fault)
                    return fault
        return None
