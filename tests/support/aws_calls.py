"""The AWS API calls a handler can reach, read from the source (no code runs), for the IAM and timeout tests.

From a handler's entry function it follows calls into modelferry's own functions and classes (a class reached is
walked whole) and records every `receiver.method(` call whose receiver is named like a boto3 client the code passes
around (`s3`, `s3_client`, `target.s3`, `self.s3`, `bedrock`, `runtime`, `sns`, `events`, `sfn`,
`dynamodb`); a class's modelferry base classes are walked with it. It over-approximates
(a branch not taken still counts), which is what a permission check and a worst-case timeout need.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

# Receiver name -> boto3 service name, as the code names its clients.
CLIENT_NAMES = {
    "s3": "s3",
    "s3_client": "s3",
    "bedrock": "bedrock",
    "runtime": "bedrock-runtime",
    "sns": "sns",
    "events": "events",
    "sfn": "stepfunctions",
    "dynamodb": "dynamodb",
}


@dataclass(frozen=True)
class _Module:
    functions: dict[str, ast.FunctionDef]
    classes: dict[str, ast.ClassDef]
    imports: dict[str, tuple[str, str]]  # local name -> (module, name), modelferry modules only


@cache
def _module(name: str) -> _Module | None:
    base = FUNCTIONS / name.replace(".", "/")
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text())
    imports = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modelferry")
        for alias in node.names
    }
    return _Module(
        functions={n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)},
        classes={n.name: n for n in tree.body if isinstance(n, ast.ClassDef)},
        imports=imports,
    )


def _receiver(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return CLIENT_NAMES.get(node.id)
    if isinstance(node, ast.Attribute):
        return CLIENT_NAMES.get(node.attr)
    return None


@dataclass
class _Walk:
    calls: list[tuple[str, str]] = field(default_factory=list)  # (service, method), one per call site
    seen: set[tuple[str, str]] = field(default_factory=set)

    def definition(self, module: str, name: str) -> None:
        if (module, name) in self.seen:
            return
        self.seen.add((module, name))
        parsed = _module(module)
        if parsed is None:
            return
        if name in parsed.functions:
            self.body(module, parsed.functions[name])
        elif name in parsed.classes:
            self.body(module, parsed.classes[name])
            for base in parsed.classes[name].bases:
                if isinstance(base, ast.Name):
                    self.definition(module, base.id)
        elif name in parsed.imports:
            self.definition(*parsed.imports[name])

    def body(self, module: str, node: ast.AST) -> None:
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            func = call.func
            if isinstance(func, ast.Attribute):
                service = _receiver(func.value)
                if service:
                    self.calls.append((service, func.attr))
                elif isinstance(func.value, ast.Name) and (func.value.id, func.attr) == ("parameters", "get_secret"):
                    self.calls.append(("secretsmanager", "get_secret_value"))  # Powertools' Secrets Manager reader
            elif isinstance(func, ast.Name):
                self.definition(module, func.id)


def reachable_calls(module: str, entry: str) -> list[tuple[str, str]]:
    """(service, method) for every AWS call site reachable from `module.entry`, sorted, repeated per call site."""
    walk = _Walk()
    walk.definition(module, entry)
    return sorted(walk.calls)
