"""Cold-start import time of each Lambda handler (`make bench-imports`), measured on the `sam build` artifact.

For every function of the built template (`.aws-sam/build/template.yaml`) that has a Python Handler, this imports
the handler's module in a fresh interpreter of the template's runtime (python3.13: found in pyenv or on PATH) with
`-X importtime`, a number of times, and reports the medians (the machine is shared and noisy: medians, not means).
Each function's artifact directory is copied twice to a scratch folder, so the build itself is left as it is:

- compiled: after `python -m compileall` on the copy, as a deployment that ships bytecode would run;
- no bytecode: every `__pycache__` removed from the copy, as the artifact `sam build` gives today is deployed (Lambda's
  code directory is read-only, so nothing is cached from one cold start to the next).

Both run with `-B` (PYTHONDONTWRITEBYTECODE): the copies are never written to. The interpreter runs isolated (`-I`:
no PYTHON* variables, no user site-packages) with an explicit sys.path of the artifact directory and the standard
library only, so nothing installed next to that Python, nor in any virtualenv, can be imported; every run also checks
that no module came from anywhere else. Its environment is built from scratch: the variables the template gives the
function whose values are plain strings (Globals included), AWS_REGION/AWS_DEFAULT_REGION=us-east-1, and with
`--env lambda` (the default) the variables Lambda itself sets, LAMBDA_TASK_ROOT among them. That one matters:
Powertools' Tracer is enabled only inside Lambda, and there it patches every library X-Ray supports at import time
(httpx included). `--env plain` leaves them out, as the tests and the local rig run. With `--env lambda` the X-Ray SDK
creates its small marker file in the system's temporary directory, as it does in Lambda.

The time of one run is the cumulative importtime of the top-level imports made by `import <handler module>` (the
interpreter's own start-up is not counted). The heavy modules (`--heavy`, repeatable; defaults below) are reported as
loaded when the module or one of its submodules was imported, with the module that imported it first.

Absolute numbers depend on this machine and include importtime's own overhead: compare runs made on the same machine
with the same options. Not named test_*: pytest must not collect it. `python tests/bench/bench_handler_imports.py
--help` for the options.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_HEAVY = ["huggingface_hub", "httpx", "modelferry.transfer", "modelferry.validation"]
MODES = {"compiled": "compiled (.pyc)", "source": "no bytecode"}
REGION = "us-east-1"
MARKER = "@@bench-handler-imports@@"
IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")

# Runs in the measured interpreter, with sys.argv = ["-c", sys.path, module, allowed roots]. Everything it needs is
# imported at start-up already (os, sys, time): the marker separates start-up from the handler's import.
CHILD = f"""
import os, sys, time
sys.path[:] = sys.argv[1].split(os.pathsep)
sys.stderr.write("\\n{MARKER}\\n")
sys.stderr.flush()
start = time.perf_counter_ns()
__import__(sys.argv[2])
elapsed = time.perf_counter_ns() - start
roots = tuple(os.path.join(os.path.realpath(p), "") for p in sys.argv[3].split(os.pathsep))
outside = sorted(
    name for name, module in list(sys.modules.items())
    if isinstance(getattr(module, "__file__", None), str)
    and not os.path.join(os.path.realpath(module.__file__), "").startswith(roots)
)
print("{MARKER}", elapsed, ",".join(outside), ",".join(sorted(sys.modules)))
"""


# --- template.yaml ---------------------------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short tags (!Ref, !GetAtt, !Sub...) as {"Ref"|"Fn::X": value}."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@dataclass
class Function:
    logical_id: str
    handler: str
    runtime: str
    memory_size: str
    environment: dict[str, str]
    code_dir: Path

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]


def plain_variables(variables: dict[str, Any]) -> dict[str, str]:
    """The variables whose value is known before deployment (intrinsic functions such as !Ref are left out)."""
    return {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in variables.items()
        if isinstance(value, str | int | float | bool)
    }


def read_functions(template_path: Path, build_dir: Path) -> tuple[list[Function], list[str]]:
    """The template's Python zip functions with a Handler, and the logical ids of those left out (with why)."""
    template = yaml.load(template_path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    globals_env = ((globals_fn.get("Environment") or {}).get("Variables")) or {}
    found, skipped = [], []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") not in {"AWS::Serverless::Function", "AWS::Lambda::Function"}:
            continue
        props = {**globals_fn, **(resource.get("Properties") or {})}
        handler, runtime = props.get("Handler"), props.get("Runtime")
        if props.get("PackageType") == "Image" or not isinstance(handler, str):
            skipped.append(f"{logical_id} (no Handler)")
            continue
        if not isinstance(runtime, str) or not runtime.startswith("python"):
            skipped.append(f"{logical_id} (runtime {runtime})")
            continue
        code_uri = props.get("CodeUri") if resource["Type"] == "AWS::Serverless::Function" else None
        code_dir = template_path.parent / code_uri if isinstance(code_uri, str) else build_dir / logical_id
        if not code_dir.is_dir():
            code_dir = build_dir / logical_id
        if not code_dir.is_dir():
            raise SystemExit(f"{logical_id}: no artifact directory {code_dir} (run `make build` first)")
        env = {**globals_env, **((props.get("Environment") or {}).get("Variables") or {})}
        found.append(
            Function(
                logical_id=logical_id,
                handler=handler,
                runtime=runtime,
                memory_size=str(props.get("MemorySize", 128)),
                environment=plain_variables(env),
                code_dir=code_dir.resolve(),
            )
        )
    return found, skipped


# --- The interpreter -------------------------------------------------------------------------------------------------


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # noqa: S603 - our own argv


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def find_python(version: str) -> Path:
    """A bare python<version>: the newest pyenv installation of that version, else the one on PATH (a virtualenv's
    interpreter is replaced by its base interpreter)."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        bare = _run([pyenv, "versions", "--bare"]).stdout.split()
        pattern = re.compile(re.escape(version) + r"(\.\d+)?")
        for name in sorted((v for v in bare if pattern.fullmatch(v)), key=_version_key, reverse=True):
            prefix = _run([pyenv, "prefix", name]).stdout.strip()
            if prefix:
                candidates.append(str(Path(prefix) / "bin" / f"python{version}"))
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    probe = "import sys, os; print(os.path.join(sys.base_prefix, 'bin', 'python%d.%d' % sys.version_info[:2]))"
    for candidate in candidates:
        result = _run([candidate, "-I", "-c", probe])
        if result.returncode == 0 and Path(result.stdout.strip()).is_file():
            return Path(result.stdout.strip())
    raise SystemExit(
        f"no Python {version} found (the template's runtime): `pyenv install {version}` or put python{version} "
        "on PATH, or pass --python"
    )


@dataclass
class Interpreter:
    executable: Path
    version: str
    stdlib_path: list[str]  # sys.path of an isolated run, less every site-packages directory
    stdlib_roots: list[str]
    site_packages: list[str]  # what is installed next to it (never on the measured sys.path)


def describe_interpreter(executable: Path) -> Interpreter:
    probe = (
        "import json, site, sys, sysconfig\n"
        "from importlib import metadata\n"
        "sites = set(site.getsitepackages()) | {site.getusersitepackages()}\n"
        "print(json.dumps({\n"
        "  'version': sys.version.split()[0],\n"
        "  'path': [p for p in sys.path if p and p not in sites and 'site-packages' not in p],\n"
        "  'roots': sorted({sysconfig.get_path('stdlib'), sysconfig.get_path('platstdlib')}),\n"
        "  'dists': sorted(f\"{d.metadata['Name']}=={d.version}\" for d in metadata.distributions()),\n"
        "}))\n"
    )
    result = _run([str(executable), "-I", "-c", probe], env=base_env())
    if result.returncode != 0:
        raise SystemExit(f"{executable} does not run: {result.stderr.strip()}")
    info = json.loads(result.stdout)
    return Interpreter(executable, info["version"], info["path"], info["roots"], info["dists"])


# --- Artifacts -------------------------------------------------------------------------------------------------------


def tree_digest(root: Path) -> str:
    """Content digest of a directory (bytecode left out), so that identical artifacts are prepared once."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass
class Prepared:
    source: Path
    compiled: Path
    compile_seconds: float
    compile_errors: str


def prepare(code_dir: Path, dest: Path, python: Path) -> Prepared:
    source, compiled = dest / "source", dest / "compiled"
    shutil.copytree(code_dir, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=True)
    shutil.copytree(source, compiled, symlinks=True)
    start = time.perf_counter()
    result = _run([str(python), "-I", "-m", "compileall", "-q", "-j", "0", str(compiled)], env=base_env())
    seconds = time.perf_counter() - start
    errors = "" if result.returncode == 0 else (result.stdout + result.stderr).strip()
    if errors:
        print(
            f"compileall reported errors in {code_dir.name} (those files cannot be imported anyway):", file=sys.stderr
        )
        print("\n".join(errors.splitlines()[:10]), file=sys.stderr)
    return Prepared(source, compiled, seconds, errors)


# --- One run ---------------------------------------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC"}


def function_env(fn: Function, task_root: Path, profile: str, home: Path) -> dict[str, str]:
    env = {**base_env(), "HOME": str(home), **fn.environment, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    if profile == "lambda":
        env |= {
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": fn.memory_size,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "_HANDLER": fn.handler,
        }
    return env


@dataclass
class Entry:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


@dataclass
class Sample:
    total_us: int
    wall_ns: int
    entries: list[Entry]
    loaded: set[str]  # the modules of `entries` that were imported (in sys.modules afterwards)


def parse_importtime(stderr: str) -> list[Entry]:
    """The importtime entries printed after the marker: the imports `import <handler module>` made."""
    _, found, after = stderr.partition(f"\n{MARKER}\n")
    if not found:
        raise ValueError("marker not found in the interpreter's stderr")
    entries = []
    for line in after.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match:
            entries.append(Entry(int(match[1]), int(match[2]), len(match[3]) // 2, match[4]))
    return entries


def run_once(interp: Interpreter, fn: Function, *, task_root: Path, profile: str, home: Path) -> Sample:
    python = interp.executable
    sys_path = os.pathsep.join([str(task_root), *interp.stdlib_path])
    roots = os.pathsep.join([str(task_root), *interp.stdlib_roots])
    cmd = [str(python), "-I", "-B", "-X", "importtime", "-c", CHILD, sys_path, fn.module, roots]
    env = function_env(fn, task_root, profile, home) | {"PYTHONDONTWRITEBYTECODE": "1"}
    result = _run(cmd, cwd=task_root, env=env)
    if result.returncode != 0:
        tail = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
        raise SystemExit(f"{fn.logical_id}: `import {fn.module}` failed:\n{tail[-3000:]}")
    report = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    if not report:
        raise SystemExit(f"{fn.logical_id}: no report on stdout:\n{result.stdout[-2000:]}")
    _, wall_ns, outside_text, loaded_text = report[-1].split(" ")
    outside = [name for name in outside_text.split(",") if name]
    if outside:
        raise SystemExit(f"{fn.logical_id}: modules imported from outside the artifact and the stdlib: {outside}")
    entries = parse_importtime(result.stderr)
    total = sum(entry.cumulative_us for entry in entries if entry.depth == 0)
    # importtime lists failed imports too (optional dependencies probed with try/except ImportError)
    loaded = set(loaded_text.split(",")) & {entry.name for entry in entries}
    return Sample(total, int(wall_ns), entries, loaded)


def heavy_loaded(sample: Sample, heavy: list[str]) -> dict[str, str | None]:
    """For each heavy module imported: the module whose import first brought it in (None: imported directly)."""
    entries = sample.entries
    found: dict[str, str | None] = {}
    for name in heavy:
        first = next(
            (
                i
                for i, e in enumerate(entries)
                if (e.name == name or e.name.startswith(name + ".")) and e.name in sample.loaded
            ),
            None,
        )
        if first is None:
            continue
        importer, depth = None, entries[first].depth
        for entry in entries[first + 1 :]:
            if entry.depth < depth:
                depth = entry.depth
                if not (entry.name == name or entry.name.startswith(name + ".")):
                    importer = entry.name
                    break
        found[name] = importer
    return found


# --- Report ----------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    fn: Function
    digest: str
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def median_ms(self, mode: str) -> float:
        return statistics.median(s.total_us for s in self.samples[mode]) / 1000

    def heavy(self, names: list[str]) -> dict[str, str | None]:
        merged: dict[str, str | None] = {}
        for samples in self.samples.values():
            for sample in samples:
                for name, importer in heavy_loaded(sample, names).items():
                    merged.setdefault(name, importer)
        return {name: merged[name] for name in names if name in merged}

    def module_count(self) -> int:
        return max(len(s.loaded) for samples in self.samples.values() for s in samples)


def markdown(results: list[Result], modes: list[str], heavy: list[str]) -> str:
    header = ["Function", "Handler module", *(f"{MODES[m]}: median ms" for m in modes), "Modules", "Heavy modules"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(modes) + 1) + ["---"]) + "|",
    ]
    for result in results:
        loaded = result.heavy(heavy)
        heavy_text = ", ".join(f"{name} (via {importer})" if importer else name for name, importer in loaded.items())
        cells = [
            result.fn.logical_id,
            f"`{result.fn.module}`",
            *(f"{result.median_ms(m):.0f}" for m in modes),
            str(result.module_count()),
            heavy_text or "none",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def as_json(results: list[Result], modes: list[str], heavy: list[str], context: dict[str, Any]) -> dict[str, Any]:
    functions = []
    for result in results:
        entry: dict[str, Any] = {
            "logical_id": result.fn.logical_id,
            "handler": result.fn.handler,
            "module": result.fn.module,
            "artifact": str(result.fn.code_dir),
            "artifact_digest": result.digest,
            "modules_imported": result.module_count(),
            "heavy_modules": result.heavy(heavy),
        }
        for mode in modes:
            samples = result.samples[mode]
            entry[mode] = {
                "median_ms": round(result.median_ms(mode), 1),
                "min_ms": round(min(s.total_us for s in samples) / 1000, 1),
                "max_ms": round(max(s.total_us for s in samples) / 1000, 1),
                "samples_us": [s.total_us for s in samples],
                "wall_median_ms": round(statistics.median(s.wall_ns for s in samples) / 1e6, 1),
            }
        functions.append(entry)
    return {**context, "functions": functions}


# --- Main ------------------------------------------------------------------------------------------------------------


def select_functions(build_dir: Path, template: Path, wanted: list[str] | None) -> tuple[list[Function], list[str]]:
    if not template.is_file():
        raise SystemExit(f"no {template}: run `make build` first")
    functions, skipped = read_functions(template, build_dir)
    if wanted:
        unknown = set(wanted) - {fn.logical_id for fn in functions}
        if unknown:
            raise SystemExit(f"not in {template}: {sorted(unknown)}")
        functions = [fn for fn in functions if fn.logical_id in wanted]
    if not functions:
        raise SystemExit(f"no Python function with a Handler in {template}")
    return functions, skipped


def interpreters_for(functions: list[Function], python: Path | None) -> dict[str, Interpreter]:
    """Runtime (python3.13) -> the bare interpreter of that version."""
    interpreters = {}
    for runtime in sorted({fn.runtime for fn in functions}):
        wanted = runtime.removeprefix("python")
        interp = describe_interpreter(python or find_python(wanted))
        if not interp.version.startswith(wanted + "."):
            raise SystemExit(f"{interp.executable} is Python {interp.version}; the template's runtime is {runtime}")
        extra = [d for d in interp.site_packages if d.split("==")[0].lower() not in {"pip", "setuptools", "wheel"}]
        if extra:
            print(f"note: {interp.executable} has {extra} installed; they are kept off sys.path", file=sys.stderr)
        interpreters[runtime] = interp
    return interpreters


def measure(
    functions: list[Function],
    interpreters: dict[str, Interpreter],
    work: Path,
    *,
    modes: list[str],
    repeat: int,
    warmup: int,
    profile: str,
) -> tuple[list[Result], dict[str, Prepared]]:
    prepared: dict[str, Prepared] = {}
    results = []
    for fn in functions:
        digest = tree_digest(fn.code_dir)
        if digest not in prepared:
            print(f"preparing {fn.code_dir.name} (copy, compileall)", file=sys.stderr)
            prepared[digest] = prepare(fn.code_dir, work / digest[:16], interpreters[fn.runtime].executable)
        results.append(Result(fn, digest))
    home = work / "home"
    home.mkdir()
    # Rounds interleave functions and modes, so that a burst of load on the machine spreads over all of them.
    for round_ in range(warmup + repeat):
        label = "warm-up" if round_ < warmup else f"run {round_ - warmup + 1}/{repeat}"
        print(f"{label}: {len(results)} functions x {len(modes)} modes", file=sys.stderr)
        for result in results:
            for mode in modes:
                sample = run_once(
                    interpreters[result.fn.runtime],
                    result.fn,
                    task_root=getattr(prepared[result.digest], mode),
                    profile=profile,
                    home=home,
                )
                if round_ >= warmup:
                    result.samples.setdefault(mode, []).append(sample)
    return results, prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"), help="sam build's output")
    parser.add_argument("--template", type=Path, help="default: BUILD_DIR/template.yaml (the built template)")
    parser.add_argument("--python", type=Path, help="the interpreter (default: the template's runtime, found)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per function and mode (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded runs first, for the page cache (default 1)")
    parser.add_argument("--heavy", action="append", help=f"module to report when loaded (default {DEFAULT_HEAVY})")
    parser.add_argument("--env", choices=["lambda", "plain"], default="lambda", help="see above (default lambda)")
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: both")
    parser.add_argument("--function", action="append", help="logical id to measure (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results, every sample included, as JSON")
    parser.add_argument("--work-dir", type=Path, help="scratch folder for the artifact copies (default: a tmp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the artifact copies")
    args = parser.parse_args()
    heavy, modes = args.heavy or DEFAULT_HEAVY, args.mode or list(MODES)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be at least 1 and --warmup at least 0")

    build_dir = args.build_dir.resolve()
    functions, skipped = select_functions(build_dir, args.template or build_dir / "template.yaml", args.function)
    interpreters = interpreters_for(functions, args.python)
    work = Path(tempfile.mkdtemp(prefix="bench-imports-", dir=args.work_dir))
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.UTC)
    try:
        results, prepared = measure(
            functions, interpreters, work, modes=modes, repeat=args.repeat, warmup=args.warmup, profile=args.env
        )
    finally:
        if args.keep:
            print(f"artifact copies kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    pythons = ", ".join(f"{i.executable} (Python {i.version})" for i in interpreters.values())
    context = {
        "started": started.isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).as_posix(), *sys.argv[1:]],
        "python": {r: {"executable": str(i.executable), "version": i.version} for r, i in interpreters.items()},
        "site_packages_of_python": {r: i.site_packages for r, i in interpreters.items()},
        "env_profile": args.env,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "heavy": heavy,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_count": os.cpu_count(),
        "compile_seconds": {d[:16]: round(p.compile_seconds, 1) for d, p in prepared.items()},
        "skipped_functions": skipped,
    }
    print(
        f"Handler import times: {pythons}; env profile `{args.env}`; median of {args.repeat} runs "
        f"(+{args.warmup} warm-up); cumulative `-X importtime` of `import <handler module>`; load average "
        f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after.\n"
    )
    print(markdown(results, modes, heavy))
    if skipped:
        print(f"\nNot measured: {', '.join(skipped)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(as_json(results, modes, heavy, context), indent=2) + "\n")
        print(f"\nJSON: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
