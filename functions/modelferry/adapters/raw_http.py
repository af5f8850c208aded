"""Raw GETs for the copy's range reads: the body goes from the socket straight into the caller's buffer.

`http.client`, not httpx: its `readinto` fills a slice of the part buffer with no chunk objects in between, and the
copy's CPU per byte is what this path is for (docs/performance.md). Like httpx (`trust_env`, its default) and
huggingface_hub, it goes through the proxy the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, and
`NO_PROXY` for the hosts to reach directly), so a function whose egress is only through a proxy reads the CDN the
same way its Plan reached the Hub:

- an https URL goes through a CONNECT tunnel (RFC 9110, 9.3.6), TLS end to end with the CDN;
- an http URL is asked of the proxy in absolute form (RFC 9112, 3.2.2).

Only http:// proxies are supported here (a TLS connection to the proxy itself would need TLS inside TLS, which
`http.client` does not do).
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import SplitResult, unquote, urlsplit

import certifi
import httpx

from modelferry.errors import InvalidRequest


class RawResponse:
    """A response whose body goes straight from the socket into the caller's buffer (`http.client`'s readinto:
    no chunk objects, no copy between them and the part buffer: the copy's CPU per byte is what it is for)."""

    def __init__(self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection, url: str) -> None:
        self._response = response
        self._connection = connection
        self.url = url
        self.status_code: int = response.status
        self.headers: Mapping[str, str] = httpx.Headers(response.getheaders())

    def readinto(self, view: memoryview) -> int:
        """Up to len(view) bytes of the body into `view`; 0 at its end. Raises OSError or http.client errors (a
        reset, a body shorter than its Content-Length) when it breaks."""
        return self._response.readinto(view)

    def read(self) -> bytes:
        return self._response.read()

    def close(self) -> None:
        """Keep the connection for the next request if the body was read to its end, else drop it."""
        if not self._response.isclosed():
            self._connection.close()
        self._response.close()


class Proxy(NamedTuple):
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization header for credentials in the proxy URL


def proxy_for(scheme: str, host: str) -> Proxy | None:
    """The proxy the environment names for a URL of `scheme` on `host`, or None to connect directly.

    The same variables and precedence as Python's `urllib.request` (lower case first, `NO_PROXY` hosts and domain
    suffixes bypass the proxy), which httpx and requests follow too."""
    proxies = urllib.request.getproxies()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass(host):
        return None
    where = urlsplit(url if "://" in url else f"http://{url}")
    if where.scheme != "http" or not where.hostname:
        raise InvalidRequest(
            f"the {scheme} proxy {where.scheme}://{where.hostname or ''} from the environment is not usable by the "
            "copy's range reads: only an http:// proxy URL is supported (HTTPS_PROXY=http://host:port)"
        )
    authorization = None
    if where.username is not None:
        credentials = f"{unquote(where.username)}:{unquote(where.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
    return Proxy(where.hostname, where.port or 80, authorization)


class RawConnections:
    """Keep-alive connections for raw reads, one per host per thread (a range worker reads one range at a time)."""

    def __init__(self, timeout_seconds: float, *, tls: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout_seconds
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._tls = tls

    def get(self, url: str, headers: Mapping[str, str]) -> RawResponse | str:
        """The response to a GET of `url`, or why no response came (to be retried by the caller's policy)."""
        parts = urlsplit(url)
        connection, proxy = self._connection(parts)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        request_headers = {"accept-encoding": "identity", "user-agent": "modelferry", **headers}
        if proxy is not None and parts.scheme == "http":
            target = url  # absolute form: the proxy makes the request
            if proxy.authorization:
                request_headers["proxy-authorization"] = proxy.authorization
        for fresh in (False, True):
            reused = connection.sock is not None
            try:
                connection.request("GET", target, headers=request_headers)
                return RawResponse(connection.getresponse(), connection, url)
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if reused and not fresh:  # the server closed an idle keep-alive connection: try a new one at once
                    continue
                return repr(exc)
        return "unreachable"  # pragma: no cover

    def close_all(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()

    def _connection(self, url: SplitResult) -> tuple[http.client.HTTPConnection, Proxy | None]:
        pool: dict[tuple[str, str], tuple[http.client.HTTPConnection, Proxy | None]]
        pool = self._local.__dict__.setdefault("pool", {})
        key = (url.scheme, url.netloc)
        if key not in pool:
            pool[key] = self._connect(url)
            with self._lock:
                self._all.append(pool[key][0])
        return pool[key]

    def _connect(self, url: SplitResult) -> tuple[http.client.HTTPConnection, Proxy | None]:
        """A connection to the URL's host, or to the proxy for it (not opened yet: http.client connects on first
        use)."""
        host = url.hostname or url.netloc
        proxy = proxy_for(url.scheme, host)
        if url.scheme != "https":
            address = url.netloc if proxy is None else f"{proxy.host}:{proxy.port}"
            return http.client.HTTPConnection(address, timeout=self._timeout), proxy
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=certifi.where())
        if proxy is None:
            return http.client.HTTPSConnection(url.netloc, timeout=self._timeout, context=self._tls), None
        connection = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=self._timeout, context=self._tls)
        # CONNECT to the CDN through the proxy, then TLS with the CDN's own name (http.client's tunnel). Tested
        # through a minimal local CONNECT proxy (tests/unit/test_raw_http.py), not yet through a production proxy.
        tunnel_headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
        connection.set_tunnel(host, url.port or 443, headers=tunnel_headers)
        return connection, proxy
