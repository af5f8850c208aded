"""A local stand-in for the Hugging Face Hub, with switchable faults (dev/test only, never deployed).

It answers the requests huggingface_hub 1.33 and plain httpx make, with the Hub's headers, status codes and error
codes, so the project's Hub client runs unchanged against it: model info, tree listing, paths-info, auth-check,
`/resolve/` (LFS files redirect to a "CDN" on another host name, as the real Hub does), ranged reads. Faults
(429, 5xx, connection resets, truncated or corrupted bodies, ignored ranges) and a per-stream bandwidth cap let
transfer and reliability tests reproduce what a real copy meets. Repos are served from memory or streamed from disk.

    with LocalHub() as hub:
        commit = hub.add_repo("org/model", gpt_oss_repo())
        HfApi(endpoint=hub.url).model_info("org/model", files_metadata=True)

Modules: `repository` (git objects, repos, the API's JSON shapes), `faults` (the switchboard), `server` (HTTP server
and handler, `LocalHub`). Run `python -m modelferry_cli.local.hub --demo` to serve a generated GPT-OSS repo to other
processes.
"""

from modelferry_cli.local.hub.faults import Endpoint, Fault, FaultKind, Faults
from modelferry_cli.local.hub.repository import Blob, Commit, git_blob_sha1, lfs_pointer
from modelferry_cli.local.hub.server import LocalHub, RequestRecord

# The repo `--demo` and `modelferry run-local` serve when no other Hub is given.
DEMO_REPO_ID = "modelferry-demo/gpt-oss-tiny"

__all__ = [
    "DEMO_REPO_ID",
    "Blob",
    "Commit",
    "Endpoint",
    "Fault",
    "FaultKind",
    "Faults",
    "LocalHub",
    "RequestRecord",
    "git_blob_sha1",
    "lfs_pointer",
]
