"""An HTTP emulator of Bedrock Custom Model Import and InvokeModel, for local runs and tests (never deployed).

moto has no model import jobs and its ``invoke_model`` answers ``{}``, so the workflow's Bedrock calls would go
untested. This server speaks the real restJson1 wire protocol of the ``bedrock`` and ``bedrock-runtime`` botocore
models (one server serves both: their paths differ), so unmodified boto3 clients reach it through ``endpoint_url`` or
``AWS_ENDPOINT_URL_BEDROCK`` / ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``.

It behaves as Bedrock does where the workflow depends on it: one concurrent import job per Region, job names never
reusable, idempotency tokens, an import that can fail for the reasons Bedrock gives, cold starts answered with
ModelNotReadyException, and injectable faults (see ``EmulatorBehaviour``).

Its clock can run ahead of the wall clock: ``simulated_seconds`` (the local rig passes the Wait/Retry seconds it
recorded instead of sleeping) is added to every time it reports (``creationTime``, ``endTime``, the HTTP ``Date``
header, a completion's ``created``) and to the ages its behaviours depend on (``import_seconds``, eviction). A handler
that measures elapsed time against Bedrock's times then sees wall time plus simulated time, so hour-long ceilings
are reached in a local run that takes seconds.

The import job reads the S3 prefix once, when it is created (Bedrock copies the artifacts when the job starts), and
keeps the verdict; it only reveals it once the job leaves ``InProgress``.

Modules: ``service`` (jobs, models, quotas, clock, faults), ``judge`` (what an import checks in S3), ``chat``
(InvokeModel replies), ``wire`` (request validation and pagination), ``errors``, ``server`` (HTTP). Run
``python -m modelferry_cli.local.bedrock`` to serve it to other processes. Nothing here imports the product package
``modelferry``: the emulator is an independent oracle for it.
"""

from modelferry_cli.local.bedrock.errors import BedrockError
from modelferry_cli.local.bedrock.judge import (
    SUPPORTED_ARCHITECTURES,
    SUPPORTED_TOKENIZER_CLASSES,
    ArtifactInspection,
    inspect_artifacts,
)
from modelferry_cli.local.bedrock.service import (
    BedrockEmulator,
    Call,
    EmulatorBehaviour,
    ImportedModel,
    ImportJob,
    custom_model_units_for,
)

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "SUPPORTED_TOKENIZER_CLASSES",
    "ArtifactInspection",
    "BedrockEmulator",
    "BedrockError",
    "Call",
    "EmulatorBehaviour",
    "ImportJob",
    "ImportedModel",
    "custom_model_units_for",
    "inspect_artifacts",
]
