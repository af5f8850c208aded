"""docs/examples/openai_to_bedrock.py, the migration page's script, run as a user would against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from modelferry_cli.local.bedrock import BedrockEmulator

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "openai_to_bedrock.py"


def test_the_migration_script_talks_to_an_imported_model() -> None:
    with BedrockEmulator(lambda: None) as emulator:
        emulator.behaviour.not_ready_invocations = 1  # cold: botocore's retries wait it out
        arn = emulator.add_imported_model("gpt-oss-20b", "s3://bucket/models/gpt-oss-20b/")
        environment = {
            **os.environ,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": str(emulator.url),
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        environment.pop("AWS_PROFILE", None)
        done = subprocess.run(  # noqa: S603 - this interpreter running a file of the repository
            [sys.executable, str(SCRIPT), arn], env=environment, capture_output=True, text=True, check=False
        )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0] == "reasoning: The user asks: What does Custom Model Import do? I should answer in one short sentence."
    )
    assert lines[1] == "Hello! You asked: What does Custom Model Import do?"
    assert lines[2].startswith("finish_reason: stop, usage: {'prompt_tokens'")
