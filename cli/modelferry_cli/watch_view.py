"""How a snapshot reads: one block redrawn in place on a terminal, plain timestamped lines anywhere else (CI logs,
files, pipes), and the same block as the final summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from modelferry.contract import Stage
from modelferry.stages.notify import DEFAULT_NEXT_STEP, NEXT_STEPS
from modelferry_cli.progress import Snapshot, StageRow, Watcher, row_of

MARKS = {"done": "ok", "running": ">>", "pending": "..", "failed": "!!"}
BAR_WIDTH = 20
MAX_FILE_ROWS = 8


def human_bytes(count: float | None) -> str:
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def bar(done: float, total: float) -> str:
    fraction = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
    filled = round(fraction * BAR_WIDTH)
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction * 100:3.0f}%"


def _copy_summary(snap: Snapshot) -> str:
    total_files = snap.file_count or snap.map_counts.get("total") or 0
    text = f"{snap.files_done}/{total_files} files"
    if snap.files and snap.total_bytes is not None:
        text += f"  {bar(snap.done_bytes, snap.total_bytes)}  {human_bytes(snap.done_bytes)} of "
        text += human_bytes(snap.total_bytes)
    elif total_files:
        running = snap.map_counts.get("running", 0)
        text += f"  {bar(snap.files_done, total_files)}" + (f"  ({running} copying)" if running else "")
    return text


def _stage_detail(snap: Snapshot, stage: StageRow) -> str:
    if stage.shows(Stage.PLAN) and stage.state == "done" and snap.file_count is not None:
        return f"{snap.file_count} files, {human_bytes(snap.total_bytes)} at commit {(snap.commit or '?')[:12]}"
    if stage.shows(Stage.COPY) and stage.state in {"running", "done", "failed"}:
        return _copy_summary(snap)
    if stage.shows(Stage.VALIDATE) and stage.state == "done":
        return "fixed " + ", ".join(snap.fixes) if snap.fixes else "no fixes needed"
    if stage.shows(Stage.VERIFY) and stage.state == "done" and snap.reply is not None:
        reply = " ".join(snap.reply.split())
        return f"reply {reply[:70]!r}" + ("..." if len(reply) > 70 else "")
    if stage.shows(Stage.QUEUE) or stage.shows(Stage.START_IMPORT):
        return _import_detail(snap, stage)
    return ""


def _import_detail(snap: Snapshot, stage: StageRow) -> str:
    if stage.shows(Stage.QUEUE):
        return _queue_detail(snap, stage)
    if snap.job_status:
        polls = f" ({snap.job_polls} polls)" if snap.job_polls else ""
        return f"{snap.job_name or '-'}  {snap.job_status}  {human_seconds(snap.job_elapsed_seconds)}{polls}"
    return ""


def _queue_detail(snap: Snapshot, stage: StageRow) -> str:
    """In line: the place and who holds the slot; once through: how long the run waited for it."""
    place = snap.queue_place
    if stage.state == "running" and place is not None:
        if place.position == 0:
            return "holds the import slot"
        ahead = f"{place.position - 1} ahead in line, " if place.position > 1 else "first in line, "
        holder = f"import slot held by {place.holder_model or '?'} ({(place.holder or '?').rsplit(':', 1)[-1]})"
        if place.holder is None:
            return f"{ordinal(place.position)} in line"
        return f"{ordinal(place.position)} in line: {ahead}{holder}"
    if stage.state == "done" and snap.queue_waited_seconds is not None:
        return f"waited {human_seconds(snap.queue_waited_seconds)} for the import slot"
    return ""


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _name(snap: Snapshot) -> str:
    return snap.model_name or snap.name


def render_block(snap: Snapshot) -> list[str]:
    """The whole picture: header, one row per stage, files in flight, retries, outcome."""
    lines = [
        f"modelferry  {snap.name}  {snap.status}  {human_seconds(snap.elapsed_seconds)}",
        f"  {snap.execution_arn}",
    ]
    if snap.repo_id:
        at = f" @ {snap.commit[:12]}" if snap.commit else ""
        lines.append(f"  {snap.repo_id}{at} -> {_name(snap)}" + (f"  ({snap.s3_uri})" if snap.s3_uri else ""))
    lines.append("")
    for stage in snap.stages:
        seconds = stage.seconds(snap.now)
        timing = human_seconds(seconds) if seconds is not None else ""
        detail = _stage_detail(snap, stage)
        lines.append(f"  {MARKS.get(stage.state, '  ')}  {stage.name:<9} {timing:>12}   {detail}".rstrip())
    copy = next((s for s in snap.stages if s.shows(Stage.COPY)), None)
    if copy is not None and copy.state == "running" and snap.files:
        lines.extend(_file_rows(snap))
    if snap.retry and not snap.finished:
        state, error, attempt = snap.retry
        lines.append(f"  retry    {state}: attempt {attempt} after {error}")
    lines.extend(f"  note     {note}" for note in snap.notes)
    if snap.finished:
        lines.append("")
        lines.extend(_outcome(snap))
    return lines


def _file_rows(snap: Snapshot) -> list[str]:
    order = {"copying": 0, "waiting": 1, "done": 2}
    files = sorted(snap.files, key=lambda f: (order[f.state], f.path))
    width = min(40, max(len(f.path) for f in files))
    rows = [
        f"       {f.path[:width]:<{width}}  {bar(f.done_bytes, f.size)}  {human_bytes(f.done_bytes)} of "
        f"{human_bytes(f.size)}"
        for f in files[:MAX_FILE_ROWS]
    ]
    if len(files) > MAX_FILE_ROWS:
        rest = files[MAX_FILE_ROWS:]
        rows.append(f"       ... {len(rest)} more ({sum(f.state == 'done' for f in rest)} done)")
    return rows


def _outcome(snap: Snapshot) -> list[str]:
    if snap.status == "SUCCEEDED":
        lines = [f"  result   SUCCEEDED in {human_seconds(snap.elapsed_seconds)}"]
        if snap.imported_model_arn:
            lines.append(f"  model    {snap.imported_model_arn}")
        if snap.reply is not None:
            lines.append(f"  reply    {snap.reply!r}")
        return lines
    # The stage the state recorded; a timed-out or aborted run records none: then the row that was running.
    failed = (
        row_of(snap.failed_stage)
        if snap.failed_stage
        else next((s.name for s in snap.stages if s.state == "failed"), None)
    )
    where = f" at {failed}" if failed else ""
    lines = [f"  result   {snap.status}{where} after {human_seconds(snap.elapsed_seconds)}: {snap.error}"]
    if snap.cause:
        lines.append(f"  cause    {' '.join(snap.cause.split())}")
    lines.append(f"  next     {NEXT_STEPS.get(snap.error or '', DEFAULT_NEXT_STEP)}")
    return lines


# --- reporters ------------------------------------------------------------------------------------------------------
class LiveReporter:
    """Redraws the block in place (ANSI: cursor up, clear to the end of the screen)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.drawn = 0

    def show(self, snap: Snapshot) -> None:
        lines = render_block(snap)
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}F\x1b[J")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self.drawn = len(lines)

    def finish(self, snap: Snapshot) -> None:
        self.show(snap)


class PlainReporter:
    """One line per thing that happened, each printed once and stamped with the time it was seen (so the lines
    stay in order in a log): stages, copy progress, finished files, import polls, retries; then the block."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.said: set[tuple[object, ...]] = set()
        self.seen_at = datetime.now(UTC)

    def _say(self, key: tuple[object, ...], text: str) -> None:
        if key not in self.said:
            self.said.add(key)
            print(f"{self.seen_at.astimezone():%H:%M:%S}  {text}", file=self.out)

    def show(self, snap: Snapshot) -> None:
        self.seen_at = snap.now
        self._say(("watching",), f"watching {snap.name} ({snap.execution_arn})")
        if snap.repo_id and snap.model_name:
            self._say(("request",), f"{snap.repo_id} -> {snap.model_name}")
        for stage in snap.stages:
            if stage.started is not None:
                self._say((stage.name, "started"), f"{stage.name} started")
            if stage.shows(Stage.COPY) and stage.state in {"running", "done"}:
                self._copy_lines(snap)
            if stage.shows(Stage.QUEUE) and stage.state == "running" and snap.queue_place is not None:
                place = snap.queue_place
                self._say(("queue", place.position, place.holder), f"Queue: {_queue_detail(snap, stage)}")
            if stage.shows(Stage.START_IMPORT) and snap.job_status:
                text = f"Import {snap.job_name or '-'}: {snap.job_status}, {human_seconds(snap.job_elapsed_seconds)}"
                self._say(("import", snap.job_polls, snap.job_status), text)
            if stage.ended is not None and stage.state in {"done", "failed"}:
                verb = "done" if stage.state == "done" else "FAILED"
                detail = _stage_detail(snap, stage) if not stage.shows(Stage.COPY) else ""
                text = f"{stage.name} {verb} in {human_seconds(stage.seconds(snap.now))}" + (
                    f": {detail}" if detail else ""
                )
                self._say((stage.name, "ended"), text)
        if snap.retry:
            state, error, attempt = snap.retry
            self._say(("retry", state, attempt), f"{state}: attempt {attempt} after {error}")
        for note in snap.notes:
            self._say(("note", note), f"note: {note}")
        self.out.flush()

    def _copy_lines(self, snap: Snapshot) -> None:
        for f in snap.files:
            if f.state == "done":
                self._say(("file", f.path), f"  copied {f.path} ({human_bytes(f.size)})")
        total = snap.total_bytes or 0
        decile = int(10 * snap.done_bytes / total) if snap.files and total else None
        self._say(("copy", snap.files_done, decile), f"Copy {_copy_summary(snap)}")

    def finish(self, snap: Snapshot) -> None:
        self.show(snap)
        print("", file=self.out)
        print("\n".join(render_block(snap)), file=self.out)
        self.out.flush()


def watch(
    watcher: Watcher,
    out: TextIO,
    *,
    interval: float,
    live: bool,
    sleep: Callable[[float], None] | None = None,
) -> Snapshot:
    """Poll until the execution ends; return the last snapshot."""
    sleep = sleep or time.sleep
    reporter = LiveReporter(out) if live else PlainReporter(out)
    while True:
        snap = watcher.snapshot()
        if snap.finished:
            reporter.finish(snap)
            return snap
        reporter.show(snap)
        sleep(interval)
