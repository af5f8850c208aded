"""`python -m modelferry_cli.local.bedrock`: serve the emulator to other processes until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import boto3

from modelferry_cli.local.bedrock import BedrockEmulator, EmulatorBehaviour


def _s3_client_factory(endpoint: str | None, region: str) -> Callable[[], Any]:
    session = boto3.session.Session(region_name=region)
    if endpoint and session.get_credentials() is None:  # a local S3 (moto server) takes any credentials
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - dummy credentials for a local endpoint
            region_name=region,
        )
    return lambda: session.client("s3", endpoint_url=endpoint)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; print one JSON line with the URL first, for whoever started the process."""
    parser = argparse.ArgumentParser(description="Serve the Bedrock emulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--s3-endpoint", help="S3 endpoint the import jobs read from (default: boto3's)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument(
        "--behaviour",
        type=json.loads,
        default={},
        help=f"JSON object of EmulatorBehaviour fields: {', '.join(f.name for f in fields(EmulatorBehaviour))}",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with BedrockEmulator(
        _s3_client_factory(args.s3_endpoint, args.region),
        EmulatorBehaviour(**args.behaviour),
        region=args.region,
        account=args.account,
        port=args.port,
    ) as emulator:
        print(json.dumps({"url": emulator.url}), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
