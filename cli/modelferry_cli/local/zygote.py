"""The fork server of the rig's Lambda workers: one process that has imported the heavy libraries once
(`lambda_worker.PRELOADED`: boto3, botocore, pydantic, Powertools, huggingface_hub, never the project's code) and
forks a worker per request, so a worker starts in milliseconds instead of re-importing them.

Not multiprocessing's "forkserver": it re-imports the parent's `__main__` in every child (the `modelferry` CLI, a
script), which would bring the rig itself into each sandbox.

Protocol on the control socket: the parent sends a pickled `WorkerSpec` with the worker's end of a socket pair
(SCM_RIGHTS); the zygote forks, the child runs `lambda_worker.main` on that socket, and the zygote answers the
child's pid (8 bytes). The zygote exits when the parent closes the control socket.
"""

from __future__ import annotations

import os
import pickle  # nosec B403 - only this process's own parent sends on the socket
import signal
import socket
import struct
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

_MAX_SPEC_BYTES = 1 << 20


class Zygote:
    """The parent's side: start the fork server once, then `fork(spec) -> (pid, pipe)`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def fork(self, spec: Any) -> tuple[int, Connection]:
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                control = self._started()
                payload = pickle.dumps(spec)
                socket.send_fds(control, [struct.pack("!Q", len(payload)) + payload], [theirs.fileno()])
                (pid,) = struct.unpack("!Q", _read_exactly(control, 8))
        finally:
            theirs.close()
        return pid, Connection(ours.detach())

    def _started(self) -> socket.socket:
        if self._process is not None and self._process.poll() is None and self._control is not None:
            return self._control
        ours, theirs = socket.socketpair()
        environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, a module of this package
            [sys.executable, "-m", "modelferry_cli.local.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        theirs.close()
        self._control = ours
        return ours


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the Lambda workers' fork server exited")
        data += chunk
    return data


def _serve(control: socket.socket) -> None:
    from modelferry_cli.local import lambda_worker

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel: the parent watches them
    while True:
        message, fds, _, _ = socket.recv_fds(control, _MAX_SPEC_BYTES + 8, 1)
        if not message:
            return
        (size,) = struct.unpack("!Q", message[:8])
        payload = message[8:]
        while len(payload) < size:
            payload += _read_exactly(control, size - len(payload))
        spec = pickle.loads(payload)  # noqa: S301  # nosec B301 - sent by this zygote's own parent
        pid = os.fork()
        if pid == 0:  # the worker
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                lambda_worker.main(Connection(fds[0]), spec)
            except BaseException:  # noqa: BLE001 - a worker ends here whatever happened; its parent sees EOF
                code = 1
            os._exit(code)
        os.close(fds[0])
        control.sendall(struct.pack("!Q", pid))


# The services the handlers make clients for (modelferry.adapters.aws.client, the Hub token's Secrets Manager).
_SERVICES = ("s3", "secretsmanager", "dynamodb", "sns", "events", "stepfunctions", "bedrock", "bedrock-runtime")


def _warm_service_models() -> None:
    """Parse each service's model (about 50 ms for S3) once, here, into boto3's default session, which the workers
    inherit: the first client a handler makes then costs what a second one does. The throwaway clients get explicit
    credentials and a Region, so nothing is looked up (no environment, no files, no network)."""
    import boto3

    boto3.setup_default_session()
    for service in _SERVICES:
        boto3.client(  # type: ignore[call-overload]  # service: a str, not one of the stubs' Literals
            service,
            region_name="us-east-1",
            aws_access_key_id="warm",
            aws_secret_access_key="warm",  # noqa: S106
        )


def main(argv: list[str]) -> None:
    import importlib

    from modelferry_cli.local.lambda_worker import PRELOADED

    for module in PRELOADED:
        importlib.import_module(module)
    _warm_service_models()
    _serve(socket.socket(fileno=int(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
