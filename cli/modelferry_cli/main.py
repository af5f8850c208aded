"""`modelferry`: the command line for people (run locally, validate a model)."""

from __future__ import annotations

import argparse
import sys

from modelferry_cli import chat_cmd, executions_cmd, models_cmd, queue_cmd, run_local, validate_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelferry", description="Hugging Face Hub -> Amazon Bedrock Custom Model Import, verified."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("run-local", help="run the whole workflow on this machine")
    run_local.add_arguments(local)
    local.set_defaults(func=run_local.run)
    validate = commands.add_parser("validate", help="check a model against Bedrock's import rules")
    validate_cmd.add_arguments(validate)
    validate.set_defaults(func=validate_cmd.run)
    for name, help_text, add, run in (
        (
            "start",
            "start an import on the deployed stack",
            executions_cmd.add_start_arguments,
            executions_cmd.run_start,
        ),
        (
            "watch",
            "follow an execution live until it ends",
            executions_cmd.add_watch_arguments,
            executions_cmd.run_watch,
        ),
        ("status", "where an execution is, once", executions_cmd.add_status_arguments, executions_cmd.run_status),
        ("list", "recent executions with their outcome", executions_cmd.add_list_arguments, executions_cmd.run_list),
        ("queue", "the line for the import slot (one import job per Region)", queue_cmd.add_arguments, queue_cmd.run),
        ("chat", "talk to an imported model (OpenAI chat completions)", chat_cmd.add_arguments, chat_cmd.run),
        (
            "models",
            "imported models: source, S3 URI, units, price",
            models_cmd.add_models_arguments,
            models_cmd.run_models,
        ),
        (
            "delete",
            "delete an imported model (and its S3 copy)",
            models_cmd.add_delete_arguments,
            models_cmd.run_delete,
        ),
    ):
        command = commands.add_parser(name, help=help_text)
        add(command)
        command.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
