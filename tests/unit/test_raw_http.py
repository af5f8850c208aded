"""The copy's raw range reads go through the proxy the environment names, as Plan's httpx requests do."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelferry.adapters.hub import HubClient
from modelferry.adapters.raw_http import Proxy, RawConnections, proxy_for
from modelferry.errors import InvalidRequest
from modelferry.transfer.hub_reader import HubFileReader
from modelferry_cli.local.hub import LocalHub

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the variables it means: none of the machine's own."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class _ForwardProxy(ThreadingHTTPServer):
    """A forward proxy on 127.0.0.1: absolute-form GETs (RFC 9112, 3.2.2) and CONNECT tunnels (RFC 9110, 9.3.6),
    recording each request line and its Proxy-Authorization."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ForwardProxy

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `seen` is the record."""

    def do_CONNECT(self) -> None:
        self.server.seen.append((f"CONNECT {self.path}", self.headers.get("proxy-authorization")))
        host, _, port = self.path.rpartition(":")
        with socket.create_connection((host, int(port))) as upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            _pipe(self.connection, upstream)
        self.close_connection = True

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def _forward(self) -> None:
        """Ask the origin in origin form, one request per connection, and relay its answer marked as the last."""
        self.server.seen.append((f"{self.command} {self.path}", self.headers.get("proxy-authorization")))
        _, _, host_port, path = self.path.split("/", 3)
        host, _, port = host_port.rpartition(":")
        with socket.create_connection((host, int(port))) as upstream:
            headers = "".join(
                f"{k}: {v}\r\n"
                for k, v in self.headers.items()
                if k.lower() not in ("proxy-authorization", "connection")
            )
            upstream.sendall(f"{self.command} /{path} HTTP/1.1\r\n{headers}connection: close\r\n\r\n".encode())
            answer = b""
            while chunk := upstream.recv(1 << 16):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        kept = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        self.connection.sendall(b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body)
        self.close_connection = True


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways until either side closes."""
    while True:
        ready, _, _ = select.select([a, b], [], [], 10)
        if not ready:
            return
        for source in ready:
            data = source.recv(1 << 16)
            if not data:
                return
            (b if source is a else a).sendall(data)


@pytest.fixture
def forward_proxy() -> Iterator[_ForwardProxy]:
    proxy = _ForwardProxy()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_proxy_from_the_environment_with_credentials_and_no_proxy_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://copy%40corp:s3cr%3At@proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,.mirror.example")

    expected = "Basic " + base64.b64encode(b"copy@corp:s3cr:t").decode()
    assert proxy_for("https", "cdn-lfs.hf.co") == Proxy("proxy.corp", 3128, expected)
    assert proxy_for("https", "internal.example") is None
    assert proxy_for("https", "hub.mirror.example") is None
    assert proxy_for("http", "cdn-lfs.hf.co") is None  # HTTPS_PROXY is for https URLs only


def test_all_proxy_and_a_bare_host_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "proxy.corp:8080")

    assert proxy_for("https", "cdn-lfs.hf.co") == Proxy("proxy.corp", 8080, None)
    assert proxy_for("http", "cdn-lfs.hf.co") == Proxy("proxy.corp", 8080, None)


def test_no_proxy_in_the_environment_connects_directly() -> None:
    assert proxy_for("https", "cdn-lfs.hf.co") is None


def test_an_https_proxy_url_is_refused_naming_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.corp:3128")

    with pytest.raises(InvalidRequest, match=r"https://proxy\.corp.*only an http:// proxy URL.*HTTPS_PROXY"):
        proxy_for("https", "cdn-lfs.hf.co")


def test_a_copy_reads_its_ranges_through_the_http_proxy(
    forward_proxy: _ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    with LocalHub() as hub:
        commit = hub.add_repo("org/model", {"model.safetensors": data})
        hub_url = hub.url
        monkeypatch.setenv("HTTP_PROXY", forward_proxy.url.replace("http://", "http://reader:pw@"))
        client = HubClient(hub.url)
        (published,) = client.list_files("org/model", commit)
        reader = HubFileReader(
            client,
            repo_id="org/model",
            commit=commit,
            path=published.path,
            size=published.size,
            sha256=published.sha256,
        )
        buffer = bytearray(published.size)
        reader.resolve()
        reader.read_into(memoryview(buffer)[: len(data) // 2], 0)
        reader.read_into(memoryview(buffer)[len(data) // 2 :], len(data) // 2)
        client.close()

    assert hashlib.sha256(buffer).hexdigest() == published.sha256
    # Plan's requests (httpx) and the copy's (http.client) alike: the resolve, then one GET per range, in absolute
    # form to the CDN host the resolve redirected to
    resolves = [line for line, _ in forward_proxy.seen if line.startswith(f"HEAD {hub_url}/org/model/resolve/")]
    ranges = [line for line, _ in forward_proxy.seen if line.startswith("GET http://") and "/cdn-lfs/" in line]
    assert (len(resolves), len(ranges)) == (1, 2), forward_proxy.seen
    assert {auth for _, auth in forward_proxy.seen} == {"Basic " + base64.b64encode(b"reader:pw").decode()}


def test_no_proxy_reads_the_hub_directly(forward_proxy: _ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalHub() as hub:
        commit = hub.add_repo("org/model", {"model.safetensors": b"\0" * 4096})
        monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the local CDN is "localhost"
        client = HubClient(hub.url)
        (published,) = client.list_files("org/model", commit)
        reader = HubFileReader(
            client, repo_id="org/model", commit=commit, path=published.path, size=4096, sha256=published.sha256
        )
        reader.resolve()
        reader.read_into(memoryview(bytearray(4096)), 0)
        client.close()

    assert forward_proxy.seen == []


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    """An https server on 127.0.0.1 with a self-signed certificate for that address, and a context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            body = f"bytes of {self.path} for {self.headers['range']}".encode()
            self.send_response(206)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = HTTPServer(("127.0.0.1", 0), Handler)
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(cert_file, key_file)
    server.socket = serving.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", ssl.create_default_context(cafile=cert_file)
    server.shutdown()
    server.server_close()


def test_an_https_cdn_url_is_read_through_a_connect_tunnel(
    forward_proxy: _ForwardProxy, tls_server: tuple[str, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    cdn, trusted = tls_server
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url.replace("http://", "http://reader:pw@"))
    connections = RawConnections(10, tls=trusted)

    response = connections.get(f"{cdn}/shard?X-Amz-Signature=abc", {"range": "bytes=0-99"})
    assert not isinstance(response, str), response
    body = response.read()
    response.close()
    connections.close_all()

    assert (response.status_code, body) == (206, b"bytes of /shard?X-Amz-Signature=abc for bytes=0-99")
    # the proxy saw only where to connect: the signed URL and the range went inside TLS with the CDN
    assert forward_proxy.seen == [
        (f"CONNECT {cdn.removeprefix('https://')}", "Basic " + base64.b64encode(b"reader:pw").decode())
    ]
