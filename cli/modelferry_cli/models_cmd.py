"""`modelferry models` and `modelferry delete`: the imported models, where each came from, what it costs, and removal.

Provenance comes from the tags the import sets on the model (`importedModelTags` in stages/import_.py):
`modelferry:source` = `REPO@COMMIT` and `modelferry:s3-uri`. A model without `modelferry:source` was not imported by
modelferry, and `delete` refuses it unless `--force`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from modelferry_cli.aws_context import (
    EXIT_FAILED,
    EXIT_OK,
    add_aws_arguments,
    one_line_aws_errors,
    region_of,
    session,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

SOURCE_TAG, S3_URI_TAG = "modelferry:source", "modelferry:s3-uri"
# The stack's defaults (template.yaml parameters PricePerCmuMinute and RunsPrefix).
DEFAULT_PRICE_PER_CMU_MINUTE = 0.0785
DEFAULT_RUNS_PREFIX = "modelferry-runs/"
WINDOW_MINUTES = 5  # imported models are billed per active 5-minute window


def add_models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--price-per-cmu-minute",
        type=float,
        default=DEFAULT_PRICE_PER_CMU_MINUTE,
        help="USD per Custom Model Unit per minute, for the estimate (default: the stack's, %(default)s; check the "
        "Amazon Bedrock pricing page for your Region)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON array")
    add_aws_arguments(parser, stack=False)


def add_delete_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="imported model name or ARN")
    parser.add_argument("--s3", action="store_true", help="also delete its weights prefix and its run records")
    parser.add_argument(
        "--runs-prefix",
        default=DEFAULT_RUNS_PREFIX,
        help="where the stack keeps run records (default: the stack's, %(default)s)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask")
    parser.add_argument("--force", action="store_true", help="delete a model modelferry did not import")
    add_aws_arguments(parser, stack=False)


def _tags(bedrock: BedrockClient, arn: str) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in bedrock.list_tags_for_resource(resourceARN=arn).get("tags", [])}


def describe(bedrock: BedrockClient, identifier: str, price_per_cmu_minute: float) -> dict[str, Any]:
    """One imported model with its provenance (from tags) and the estimated price of an active window."""
    model = bedrock.get_imported_model(modelIdentifier=identifier)
    tags = _tags(bedrock, model["modelArn"])
    repo, _, commit = tags.get(SOURCE_TAG, "").rpartition("@")
    units = (model.get("customModelUnits") or {}).get("customModelUnitsPerModelCopy")
    created = model.get("creationTime")
    return {
        "name": model["modelName"],
        "arn": model["modelArn"],
        "imported_by_modelferry": SOURCE_TAG in tags,
        "repo_id": repo or None,
        "commit": commit or None,
        "s3_uri": tags.get(S3_URI_TAG) or model.get("modelDataSource", {}).get("s3DataSource", {}).get("s3Uri"),
        "architecture": model.get("modelArchitecture"),
        "custom_model_units": units,
        "created": created.isoformat() if isinstance(created, datetime) else created,
        "estimated_usd_per_5_minute_window": (
            round(units * price_per_cmu_minute * WINDOW_MINUTES, 4) if units is not None else None
        ),
    }


def list_models(bedrock: BedrockClient, price_per_cmu_minute: float) -> list[dict[str, Any]]:
    pages = bedrock.get_paginator("list_imported_models").paginate()
    arns = [summary["modelArn"] for page in pages for summary in page.get("modelSummaries", [])]
    return [describe(bedrock, arn, price_per_cmu_minute) for arn in arns]


@one_line_aws_errors
def run_models(args: argparse.Namespace, out: TextIO) -> int:
    models = list_models(session(args).client("bedrock"), args.price_per_cmu_minute)
    if args.json:
        print(json.dumps(models), file=out)
        return EXIT_OK
    if not models:
        print("No imported models in this Region.", file=out)
    for model in models:
        source = f"{model['repo_id']}@{model['commit']}" if model["imported_by_modelferry"] else "(not modelferry)"
        print(f"{model['name']}  {model['arn']}", file=out)
        print(f"  source:  {source}", file=out)
        print(f"  s3:      {model['s3_uri']}", file=out)
        print(
            f"  model:   {model['architecture']}, {model['custom_model_units']} Custom Model Units, created "
            f"{model['created']}",
            file=out,
        )
        print(
            f"  cost:    about ${model['estimated_usd_per_5_minute_window']} per active 5-minute window "
            f"(at ${args.price_per_cmu_minute} per CMU-minute)",
            file=out,
        )
    return EXIT_OK


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def s3_targets(model: dict[str, Any], runs_prefix: str) -> list[tuple[str, str]]:
    """(bucket, prefix) pairs `--s3` removes: the weights prefix and the model's run records beside it."""
    if not model["s3_uri"]:
        return []
    bucket, weights = _split_s3_uri(model["s3_uri"])
    if not weights:
        return []  # never a whole bucket
    runs = f"{runs_prefix.rstrip('/')}/{model['name']}/" if runs_prefix.strip("/") else None
    return [(bucket, weights)] + ([(bucket, runs)] if runs else [])


def _confirm(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("modelferry: not deleting: pass --yes to confirm without a terminal", file=sys.stderr)
        return False
    return input("Delete? [y/N] ").strip().lower() in {"y", "yes"}


@one_line_aws_errors
def run_delete(args: argparse.Namespace, out: TextIO) -> int:
    aws = session(args, region_of(args.model))
    bedrock = aws.client("bedrock")
    model = describe(bedrock, args.model, DEFAULT_PRICE_PER_CMU_MINUTE)
    if not model["imported_by_modelferry"] and not args.force:
        print(
            f"modelferry: {model['name']} has no {SOURCE_TAG} tag: modelferry did not import it, so it is left alone "
            "(pass --force to delete it anyway)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    s3 = aws.client("s3")
    pairs = s3_targets(model, args.runs_prefix) if args.s3 else []
    targets = [(bucket, prefix, _keys(s3, bucket, prefix)) for bucket, prefix in pairs]
    print(f"Will delete the imported model {model['name']} ({model['arn']})", file=out)
    for bucket, prefix, keys in targets:
        print(f"Will delete {len(keys)} objects under s3://{bucket}/{prefix}", file=out)
    if not _confirm(args):
        return EXIT_FAILED
    bedrock.delete_imported_model(modelIdentifier=model["arn"])
    print(f"Deleted {model['name']}", file=out)
    for bucket, prefix, keys in targets:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        print(f"Deleted {len(keys)} objects under s3://{bucket}/{prefix}", file=out)
    return EXIT_OK
