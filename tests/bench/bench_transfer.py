"""Transfer benchmark (`make bench`): modelferry's streaming copy against snapshot_download + boto3 upload_file.

Everything runs on this machine, each piece in its own process: the local Hub serving a folder of seeded random
shards at no more than 40 MB/s per connection (one CDN stream), moto's server as S3 (restarted for every contender,
as it keeps objects in memory), and each contender, which reports its own wall time, peak RSS and bytes written to
disk. Contenders:

- baseline: `snapshot_download` to a local folder, then `upload_file` (boto3's managed transfer, what `aws s3 sync`
  does) of each file;
- modelferry: `copy_file` for every file at once, as the Distributed Map would run them;
- ceiling: the same sizes put from memory with modelferry's part size and parts in flight: what this S3 accepts;
- uncoupled: a verified copy's work with nothing tying its parts together: every file read from the Hub by the
  copy's reader (its part size and parts in flight) and hashed in order, while the ceiling's uploads run at once in
  the same process. A copy does all of that work and must also wait for each part's read before its upload: this
  is what the work itself costs on this machine, the reference for how much the copy's coupling loses (a copy can
  still come out ahead in a run: this contender runs twice the threads and holds more buffers);
- rss-small / rss-large: modelferry copying the 256 MiB file alone, then the 2 GiB file alone;
- sha256: hashing as many bytes from memory, the floor of any verified copy's CPU.

The CPU time of each contender is its process's user + sys (the parent's RUSAGE_CHILDREN before and after it).

Not named test_*: pytest must not collect it. Run `python tests/bench/bench_transfer.py --help` for the options.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.config import Config

MiB = 1024 * 1024
REPO = "bench/gpt-oss-shaped"
BUCKET = "bench-models"
HUB_BANDWIDTH = 40_000_000  # bytes/s per connection, about what one CDN stream gives
# >= 2 GiB over >= 3 shards, one of 2 GiB (the RSS comparison's large file) and one of 256 MiB (its small one)
SHARDS_MIB = {
    "model-00001-of-00003.safetensors": 2048,
    "model-00002-of-00003.safetensors": 256,
    "model-00003-of-00003.safetensors": 96,
}
RSS_SMALL, RSS_LARGE = "model-00002-of-00003.safetensors", "model-00001-of-00003.safetensors"
TARGETS = {
    "speedup": 2.0,
    "of_ceiling": 0.85,  # in every repetition
    "of_ceiling_median": 0.90,
    "cpu_vs_ceiling": 1.5,
    "rss_mib": 512,
    "rss_spread": 0.10,
}
CONTENDERS = ("baseline", "modelferry", "ceiling", "uncoupled", "rss-small", "rss-large", "sha256")
MOTO_KEY_BUFFER_BYTES = 8 * 1024 * MiB  # larger than any object of the benchmark: every object stays in memory
AWS_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


# --- The rig (parent process) ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender; medians are reported")
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache/transfer"), help="where the shards live")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the shards for a quick try (e.g. 0.05)")
    parser.add_argument("contender", nargs="*", help=argparse.SUPPRESS)  # internal: run one contender
    args = parser.parse_args()
    if args.contender:
        run_contender(args.contender)
        return

    folder = make_model(args.cache / f"model-x{args.scale:g}", args.scale)
    runs: dict[str, list[dict[str, Any]]] = {}
    with local_hub(folder) as (hub_url, commit, hub_pid):
        for repeat in range(1, args.repeat + 1):
            for name in CONTENDERS:
                with moto_server() as (s3_url, s3_pid):
                    scratch = args.cache / "scratch"
                    shutil.rmtree(scratch, ignore_errors=True)
                    scratch.mkdir(parents=True)
                    hub_cpu, s3_cpu = process_cpu_seconds(hub_pid), process_cpu_seconds(s3_pid)
                    run = contender(name, hub_url=hub_url, commit=commit, s3_url=s3_url, scratch=scratch)
                    run["hub_cpu_seconds"] = process_cpu_seconds(hub_pid) - hub_cpu
                    run["s3_cpu_seconds"] = process_cpu_seconds(s3_pid) - s3_cpu
                    shutil.rmtree(scratch, ignore_errors=True)
                load = os.getloadavg()[0]
                print(f"run {repeat}/{args.repeat} {name:10} {describe(run)}  load {load:.1f}", flush=True)
                runs.setdefault(name, []).append(run)
    report(runs, total_bytes=sum(p.stat().st_size for p in folder.iterdir()))


def make_model(folder: Path, scale: float) -> Path:
    """Write the shards once: valid safetensors headers over seeded random bytes (so every sha256 is real)."""
    stamp = folder / ".complete"
    if stamp.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating the benchmark model in {folder} (once)...", flush=True)
    rng = np.random.default_rng(20260805)
    for name, mib in SHARDS_MIB.items():
        size = max(MiB, int(mib * MiB * scale))
        tensor_bytes = size - 128
        header = json.dumps({"weight": {"dtype": "U8", "shape": [tensor_bytes], "data_offsets": [0, tensor_bytes]}})
        header = header.ljust(120)  # 8 + 120 = 128 bytes before the tensor
        with (folder / name).open("wb") as out:
            out.write(len(header).to_bytes(8, "little") + header.encode())
            for offset in range(0, tensor_bytes, 64 * MiB):
                out.write(rng.bytes(min(64 * MiB, tensor_bytes - offset)))
    (folder / "config.json").write_text(json.dumps({"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss"}))
    stamp.touch()
    return folder


@contextmanager
def local_hub(folder: Path) -> Iterator[tuple[str, str, int]]:
    command = [sys.executable, "-m", "modelferry_cli.local.hub", "--port", "0"]
    command += ["--repo", f"{REPO}={folder}", "--bandwidth", str(HUB_BANDWIDTH)]
    print("starting the local Hub (it hashes the shards first)...", flush=True)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as hub:  # noqa: S603
        try:
            assert hub.stdout is not None
            started = json.loads(hub.stdout.readline())
            yield started["url"], started["repos"][REPO], hub.pid
        finally:
            hub.terminate()


@contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    # moto spools every object or part over its key buffer (5 MiB by default) to a temporary file, then reads the
    # parts back from disk to complete an upload; S3 keeps no client waiting on a local disk, so neither does the bench
    env = {**os.environ, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(MOTO_KEY_BUFFER_BYTES)}
    with subprocess.Popen(  # noqa: S603
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as server:
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url)
            yield url, server.pid
        finally:
            server.terminate()


def process_cpu_seconds(pid: int) -> float:
    """user + sys of a running process (its threads included), from /proc/PID/stat: the stand-ins' share of the
    machine's two cores, which the contender competes with."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
        except OSError:
            time.sleep(0.1)
        else:
            return
    raise RuntimeError(f"moto server at {url} did not start")


def contender(name: str, *, hub_url: str, commit: str, s3_url: str, scratch: Path) -> dict[str, Any]:
    env = {**os.environ, **AWS_ENV, "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_DISABLE_XET": "1"}
    env |= {"HF_ENDPOINT": hub_url, "HF_HOME": str(scratch / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    command = [sys.executable, __file__, name, hub_url, commit, s3_url, str(scratch)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"contender {name} failed:\n{done.stderr[-4000:]}")
    run: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # user + sys of the contender's process alone: the Hub and S3 servers are other processes, not waited for here
    run["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return run


def cpu_per_gib(run: dict[str, Any]) -> float:
    return float(run["cpu_seconds"]) / (run["bytes"] / 1024**3)


def describe(run: dict[str, Any]) -> str:
    return (
        f"{run['seconds']:7.1f} s  {run['bytes'] / MiB / run['seconds']:7.1f} MiB/s  "
        f"cpu {cpu_per_gib(run):5.2f} s/GiB  hub {run['hub_cpu_seconds']:5.1f} s  s3 {run['s3_cpu_seconds']:5.1f} s  "
        f"rss {run['max_rss'] / MiB:6.0f} MiB  "
        f"disk {run['disk_bytes'] / MiB:8.1f} MiB"
    )


def report(runs: dict[str, list[dict[str, Any]]], total_bytes: int) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    def per_run(
        name: str, measure: Callable[[dict[str, Any], dict[str, Any]], float], against: str = "modelferry"
    ) -> list[float]:
        """measure(this contender's run, the other's run) in each repetition (run a minute apart, so under about
        the same load from the rest of the machine)."""
        return [measure(a, b) for a, b in zip(runs[name], runs[against], strict=True)]

    def time_ratios(name: str) -> list[float]:
        return per_run(name, lambda a, b: a["seconds"] / b["seconds"])

    def cpu_ratios(name: str) -> list[float]:
        """modelferry's CPU per GiB over this contender's."""
        return per_run(name, lambda a, b: cpu_per_gib(b) / cpu_per_gib(a))

    def listed(values: list[float], form: str) -> str:
        return ", ".join(format(value, form) for value in values)

    print(f"\nmedians of {len(runs['modelferry'])} runs, {total_bytes / MiB:.0f} MiB in {len(SHARDS_MIB) + 1} files\n")
    print(f"| {'contender':<42} | wall s | vs modelferry | MiB/s | CPU s/GiB | peak RSS MiB | disk MiB |")
    print(f"|{'-' * 44}|--------|---------------|-------|-----------|--------------|----------|")
    labels = {
        "baseline": "baseline: snapshot_download + upload_file",
        "modelferry": "modelferry: copy_file, files in parallel",
        "ceiling": "S3 ceiling: the same sizes from memory",
        "uncoupled": "uncoupled: Hub reads + sha256, and uploads",
        "rss-small": f"modelferry: the {median('rss-small', 'bytes') / MiB:.0f} MiB shard alone",
        "rss-large": f"modelferry: the {median('rss-large', 'bytes') / MiB:.0f} MiB shard alone",
        "sha256": "sha256 alone, from memory (the floor)",
    }
    for name, label in labels.items():
        seconds = median(name, "seconds")
        timed = ("baseline", "modelferry", "ceiling", "uncoupled")
        ratio = f"{statistics.median(time_ratios(name)):.2f}x" if name in timed else "-"
        cpu = statistics.median(cpu_per_gib(run) for run in runs[name])
        print(
            f"| {label:<42} | {seconds:6.1f} | {ratio:>13} | {median(name, 'bytes') / MiB / seconds:5.1f} "
            f"| {cpu:9.2f} | {median(name, 'max_rss') / MiB:12.0f} | {median(name, 'disk_bytes') / MiB:8.1f} |"
        )
    speedups, of_ceiling, cpu_vs_ceiling = time_ratios("baseline"), time_ratios("ceiling"), cpu_ratios("ceiling")
    rss = {name: median(name, "max_rss") for name in ("modelferry", "rss-small", "rss-large")}
    spread = abs(rss["rss-large"] - rss["rss-small"]) / rss["rss-small"]
    disk = max(run["disk_bytes"] for name in ("modelferry", "rss-small", "rss-large") for run in runs[name])
    checks = [
        (
            f"at least {TARGETS['speedup']}x faster than the baseline",
            statistics.median(speedups) >= TARGETS["speedup"],
            f"{statistics.median(speedups):.2f}x (runs: {listed(speedups, '.2f')})",
        ),
        (
            f"at least {TARGETS['of_ceiling']:.0%} of the S3 ceiling in every run",
            min(of_ceiling) >= TARGETS["of_ceiling"],
            f"runs: {listed(of_ceiling, '.0%')}",
        ),
        (
            f"at least {TARGETS['of_ceiling_median']:.0%} of the S3 ceiling at the median",
            statistics.median(of_ceiling) >= TARGETS["of_ceiling_median"],
            f"{statistics.median(of_ceiling):.0%}",
        ),
        (
            f"CPU per GiB at most {TARGETS['cpu_vs_ceiling']}x the ceiling process's",
            statistics.median(cpu_vs_ceiling) <= TARGETS["cpu_vs_ceiling"],
            f"{statistics.median(cpu_vs_ceiling):.2f}x (runs: {listed(cpu_vs_ceiling, '.2f')}; "
            f"vs sha256 alone: {listed(cpu_ratios('sha256'), '.2f')})",
        ),
        (
            f"peak RSS at most {TARGETS['rss_mib']} MiB",
            max(rss.values()) <= TARGETS["rss_mib"] * MiB,
            ", ".join(f"{name} {value / MiB:.0f} MiB" for name, value in rss.items()),
        ),
        (
            f"same RSS for 256 MiB and 2 GiB files (within {TARGETS['rss_spread']:.0%})",
            spread <= TARGETS["rss_spread"],
            f"{spread:.1%} apart",
        ),
        ("zero bytes written to local disk", disk == 0, f"{disk:.0f} bytes"),
    ]
    print()
    for target, passed, figure in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {target}: {figure}")
    # The copy's work with no part of it waiting for another, in the targets' own terms
    uncoupled_share = per_run("ceiling", lambda a, b: a["seconds"] / b["seconds"], against="uncoupled")
    uncoupled_cpu = per_run("ceiling", lambda a, b: cpu_per_gib(b) / cpu_per_gib(a), against="uncoupled")
    print(
        "\nuncoupled (a copy's work, nothing waiting on anything): "
        f"{statistics.median(uncoupled_share):.0%} of the S3 ceiling (runs: {listed(uncoupled_share, '.0%')}), "
        f"CPU per GiB {statistics.median(uncoupled_cpu):.2f}x the ceiling's (runs: {listed(uncoupled_cpu, '.2f')})"
    )
    to_uncoupled, cpu_to_uncoupled = time_ratios("uncoupled"), cpu_ratios("uncoupled")
    print(
        f"modelferry against it: {statistics.median(to_uncoupled):.0%} of its speed "
        f"(runs: {listed(to_uncoupled, '.0%')}), CPU per GiB {statistics.median(cpu_to_uncoupled):.2f}x "
        f"(runs: {listed(cpu_to_uncoupled, '.2f')})"
    )


# --- The contenders (each in its own process) --------------------------------------------------------------------


def run_contender(argv: list[str]) -> None:
    name, hub_url, commit, s3_url, scratch = argv
    contenders: dict[str, Callable[[], tuple[int, int]]] = {
        "baseline": lambda: baseline(commit, s3_url, Path(scratch)),
        "modelferry": lambda: modelferry(hub_url, commit, s3_url, only=None),
        "ceiling": lambda: ceiling(hub_url, commit, s3_url),
        "uncoupled": lambda: uncoupled(hub_url, commit, s3_url),
        "rss-small": lambda: modelferry(hub_url, commit, s3_url, only=RSS_SMALL),
        "rss-large": lambda: modelferry(hub_url, commit, s3_url, only=RSS_LARGE),
        "sha256": lambda: sha256_alone(hub_url, commit),
    }
    written_before = disk_write_bytes()
    started = time.monotonic()
    copied, on_disk = contenders[name]()
    seconds = time.monotonic() - started
    disk_bytes = max(disk_write_bytes() - written_before, on_disk)
    print(json.dumps({"seconds": seconds, "bytes": copied, "max_rss": peak_rss(), "disk_bytes": disk_bytes}))


def peak_rss() -> int:
    """This process's peak resident memory. Not ru_maxrss: Linux carries the parent's peak across fork and exec
    into it, so every contender would report at least the rig's own size."""
    return proc_field("/proc/self/status", "VmHWM:") * 1024  # kB


def disk_write_bytes() -> int:
    """Bytes this process caused to be written to storage (counted when pages are dirtied, before writeback)."""
    return proc_field("/proc/self/io", "write_bytes:")


def proc_field(path: str, name: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    raise RuntimeError(f"{path} has no {name}")


def s3_client(s3_url: str) -> Any:
    # moto assembles a completed multipart object in one Python call: for the 2 GiB file on a loaded machine that
    # can outlast botocore's default 60 s read timeout, and the retried CompleteMultipartUpload then fails with 500
    config = Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=16, read_timeout=600)
    return boto3.client("s3", endpoint_url=s3_url, config=config)


def baseline(commit: str, s3_url: str, scratch: Path) -> tuple[int, int]:
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(REPO, revision=commit, local_dir=scratch / "download"))
    s3 = s3_client(s3_url)
    s3.create_bucket(Bucket=BUCKET)
    files = [p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts]
    for path in files:
        s3.upload_file(str(path), BUCKET, f"baseline/{path.relative_to(folder)}")
    size = sum(p.stat().st_size for p in files)
    return size, size


def modelferry(hub_url: str, commit: str, s3_url: str, *, only: str | None) -> tuple[int, int]:
    from modelferry.adapters.hub import HubClient
    from modelferry.contract import ManifestEntry
    from modelferry.transfer.engine import copy_file

    hub = HubClient(hub_url)
    setup = s3_client(s3_url)
    setup.create_bucket(Bucket=BUCKET)
    entries = [
        ManifestEntry(path=f.path, size=f.size, sha256=f.sha256, blob_id=f.blob_id, key=f"modelferry/{f.path}")
        for f in hub.list_files(REPO, commit)
        if only in (None, f.path)
    ]
    clients = [s3_client(s3_url) for _ in entries]  # one per file, as each Map child has its own

    def copy(entry: ManifestEntry, s3: Any) -> int:
        result = copy_file(entry, hub=hub, repo_id=REPO, commit=commit, bucket=BUCKET, s3_client=s3)
        return result.bytes_copied

    with ThreadPoolExecutor(max_workers=len(entries)) as pool:
        return sum(pool.map(copy, entries, clients)), 0


def ceiling(hub_url: str, commit: str, s3_url: str) -> tuple[int, int]:
    """What this S3 accepts from memory for the same files, with modelferry's part size and parts in flight."""
    from modelferry.adapters.hub import HubClient
    from modelferry.transfer.engine import TransferOptions, part_size_for

    options = TransferOptions()
    sizes = [f.size for f in HubClient(hub_url).list_files(REPO, commit)]
    setup = s3_client(s3_url)
    setup.create_bucket(Bucket=BUCKET)
    block = np.random.default_rng(1).bytes(max(part_size_for(size, options) for size in sizes))
    clients = [s3_client(s3_url) for _ in sizes]

    def put(index: int, size: int, s3: Any) -> int:
        key = f"ceiling/file-{index}"
        if size < options.single_put_max_bytes:
            s3.put_object(Bucket=BUCKET, Key=key, Body=io.BytesIO(block[:size]))
            return size
        part_size = part_size_for(size, options)
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]

        def part(number: int) -> dict[str, Any]:
            length = min(part_size, size - (number - 1) * part_size)
            body = io.BytesIO(block[:length]) if length < len(block) else io.BytesIO(block)
            answer = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=body)
            return {"PartNumber": number, "ETag": answer["ETag"]}

        with ThreadPoolExecutor(max_workers=options.parts_in_flight) as parts:
            done = list(parts.map(part, range(1, -(-size // part_size) + 1)))
        s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": done})
        return size

    with ThreadPoolExecutor(max_workers=len(sizes)) as pool:
        return sum(pool.map(put, range(len(sizes)), sizes, clients)), 0


def uncoupled(hub_url: str, commit: str, s3_url: str) -> tuple[int, int]:
    """The ceiling's uploads and the copy's reads and hashing, at once in this process, with no part waiting for
    another: the bytes read are hashed and dropped, the bytes uploaded come from memory."""
    with ThreadPoolExecutor(max_workers=2) as both:
        uploads = both.submit(ceiling, hub_url, commit, s3_url)
        reads = both.submit(read_and_hash, hub_url, commit)
        reads.result()
        return uploads.result()


def read_and_hash(hub_url: str, commit: str) -> int:
    """Every file read from the Hub with the copy's reader, part size and parts in flight (buffers reused), and hashed
    in file order as the copy hashes it; files in parallel. Returns the bytes read."""
    import hashlib
    import queue
    from collections import deque

    from modelferry.adapters.hub import HubClient
    from modelferry.transfer.engine import TransferOptions, part_size_for
    from modelferry.transfer.hub_reader import HubFileReader

    options = TransferOptions()
    hub = HubClient(hub_url)

    def read_file(path: str, size: int, sha256: str | None) -> int:
        part_size = part_size_for(size, options)
        reader = HubFileReader(hub, repo_id=REPO, commit=commit, path=path, size=size, sha256=sha256)
        reader.resolve()
        free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(options.parts_in_flight):
            free.put(bytearray(part_size))

        def read(offset: int) -> tuple[bytearray, memoryview]:
            buffer = free.get()
            view = memoryview(buffer)[: min(part_size, size - offset)]
            reader.read_into(view, offset)
            return buffer, view

        digest = hashlib.sha256()
        offsets = iter(range(0, size, part_size))
        with ThreadPoolExecutor(max_workers=options.parts_in_flight) as pool:
            pending = deque(
                pool.submit(read, offset) for _, offset in zip(range(options.parts_in_flight), offsets, strict=False)
            )
            while pending:
                buffer, view = pending.popleft().result()
                digest.update(view)
                view.release()
                free.put(buffer)
                if (offset := next(offsets, None)) is not None:
                    pending.append(pool.submit(read, offset))
        if sha256 is not None and digest.hexdigest() != sha256:
            raise RuntimeError(f"{path}: read bytes hash to {digest.hexdigest()}, the Hub published {sha256}")
        return size

    files = hub.list_files(REPO, commit)
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        return sum(pool.map(read_file, [f.path for f in files], [f.size for f in files], [f.sha256 for f in files]))


def sha256_alone(hub_url: str, commit: str) -> tuple[int, int]:
    """sha256 over as many bytes as the model holds, from one 8 MiB block in memory: what verifying costs at least."""
    import hashlib

    from modelferry.adapters.hub import HubClient

    total = sum(f.size for f in HubClient(hub_url).list_files(REPO, commit))
    block = memoryview(np.random.default_rng(2).bytes(8 * MiB))
    digest = hashlib.sha256()
    for offset in range(0, total, len(block)):
        digest.update(block[: min(len(block), total - offset)])
    return total, 0


if __name__ == "__main__":
    main()
