"""The emulator's HTTP server: one threaded server for both ``bedrock`` and ``bedrock-runtime`` (their paths differ)."""

from __future__ import annotations

import email.utils
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from modelferry_cli.local.bedrock.service import BedrockEmulator

LOG = logging.getLogger(__name__)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: BedrockEmulator, port: int) -> None:
        super().__init__(("127.0.0.1", port), _RequestHandler)
        self.emulator = emulator


class _RequestHandler(BaseHTTPRequestHandler):
    server: EmulatorServer

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        status, headers, payload = self.server.emulator.handle(self.command, url.path, query, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _dispatch  # noqa: N815 - the names http.server dispatches to

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, on the emulator's clock (send_response adds it to every answer)."""
        moment = self.server.emulator.now().timestamp() if timestamp is None else timestamp
        return email.utils.formatdate(moment, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug(format, *args)
