"""`python -m modelferry_cli.local.hub --demo`: serve model repos to other processes over the local Hub."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

from modelferry_cli.local.hub import DEMO_REPO_ID, LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve model repos over a local Hugging Face Hub stand-in.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--repo", action="append", default=[], metavar="ORG/NAME=FOLDER", help="serve a folder")
    parser.add_argument("--demo", action="store_true", help=f"serve a generated GPT-OSS repo as {DEMO_REPO_ID}")
    parser.add_argument("--bandwidth", type=int, default=None, metavar="BYTES_PER_S", help="cap each stream")
    args = parser.parse_args(argv)
    folders = {}
    for spec in args.repo:
        repo_id, separator, folder = spec.partition("=")
        if not separator or not Path(folder).is_dir():
            parser.error(f"--repo expects ORG/NAME=FOLDER with an existing folder, got {spec!r}")
        folders[repo_id] = Path(folder)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with LocalHub(port=args.port, bandwidth_bytes_per_s=args.bandwidth) as hub:
        commits = {repo_id: hub.add_repo(repo_id, folder) for repo_id, folder in folders.items()}
        if args.demo:
            commits[DEMO_REPO_ID] = hub.add_repo(DEMO_REPO_ID, gpt_oss_repo())
        print(json.dumps({"url": hub.url, "repos": commits}), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
