"""Region rules: Custom Model Import runs in four Regions, and GPT-OSS imports in us-east-1 only. Checked the same
on a folder, the Hub and S3; skipped when no Region is given."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from modelferry.adapters.hub import HubClient
from modelferry.validation import (
    CODES,
    HubRepoSource,
    LocalFolderSource,
    S3PrefixSource,
    ValidationOptions,
    ValidationReport,
    validate,
)
from modelferry.validation.bedrock import IMPORT_REGIONS
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import write_repo
from modelferry_cli.local.template import load_template
from tests.support import validation_repos as repos
from tests.support.validation_repos import Files

BUCKET = "models"


def problems(report: ValidationReport) -> set[tuple[str, str | None]]:
    return {(f.code, f.path) for f in report.findings if f.severity.value != "info"}


# (repository, region, the non-info findings expected: exactly these)
CASES: list[tuple[Callable[[], Files], str | None, set[tuple[str, str | None]]]] = [
    (repos.llama31_instruct, "us-east-1", set()),
    (repos.llama31_instruct, "eu-central-1", set()),
    (repos.qwen3_moe, "us-west-2", set()),
    (repos.llama31_instruct, "eu-west-1", {("REGION_UNSUPPORTED", None)}),
    (repos.qwen25_instruct, "ap-southeast-2", {("REGION_UNSUPPORTED", None)}),
    (repos.gpt_oss_bf16_finetune, "us-east-1", {("INDEX_METADATA_FIELD_UNSUPPORTED", repos.INDEX)}),
    (
        repos.gpt_oss_bf16_finetune,
        "us-east-2",
        {("ARCHITECTURE_REGION_UNSUPPORTED", None), ("INDEX_METADATA_FIELD_UNSUPPORTED", repos.INDEX)},
    ),
    (
        repos.gpt_oss_bf16_finetune,
        "eu-central-1",
        {("ARCHITECTURE_REGION_UNSUPPORTED", None), ("INDEX_METADATA_FIELD_UNSUPPORTED", repos.INDEX)},
    ),
    # Outside the import Regions the Region finding is enough: the architecture's own limit is not repeated.
    (
        repos.gpt_oss_bf16_finetune,
        "eu-west-1",
        {("REGION_UNSUPPORTED", None), ("INDEX_METADATA_FIELD_UNSUPPORTED", repos.INDEX)},
    ),
    (repos.gpt_oss_bf16_finetune, None, {("INDEX_METADATA_FIELD_UNSUPPORTED", repos.INDEX)}),
]
IDS = [f"{build.__name__}-{region}" for build, region, _ in CASES]


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with LocalHub() as local_hub:
        yield local_hub


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_region_rules_on_a_folder_the_hub_and_s3(tmp_path: Path, hub: LocalHub, s3, case):
    build, region, expected = case
    files = build()
    commit = hub.add_repo(f"org/{build.__name__}", files)
    for path, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"m/{path}", Body=data)
    options = ValidationOptions(region=region)

    reports = [
        validate(LocalFolderSource(write_repo(files, tmp_path)), options),
        validate(HubRepoSource(HubClient(hub.url), f"org/{build.__name__}", commit), options),
        validate(S3PrefixSource(s3, BUCKET, "m/"), options),
    ]

    for report in reports:
        assert problems(report) == expected
        assert report.region == region
        assert report.to_json_dict()["region"] == region
    failed = any(code.endswith("REGION_UNSUPPORTED") for code, _ in expected)
    assert (reports[0].verdict == "failed") is failed


def test_the_messages_name_the_regions_that_work(tmp_path: Path):
    report = validate(
        LocalFolderSource(write_repo(repos.llama31_instruct(), tmp_path)), ValidationOptions(region="eu-west-1")
    )
    (finding,) = report.by_severity(CODES["REGION_UNSUPPORTED"].severity)
    assert "eu-west-1" in finding.message
    assert all(region in finding.message for region in ("us-east-1", "us-east-2", "us-west-2", "eu-central-1"))

    oss = validate(
        LocalFolderSource(write_repo(repos.gpt_oss_bf16_finetune(), tmp_path / "oss")),
        ValidationOptions(region="us-west-2"),
    )
    (region_finding,) = [f for f in oss.findings if f.code == "ARCHITECTURE_REGION_UNSUPPORTED"]
    assert "gpt_oss" in region_finding.message
    assert "us-east-1" in region_finding.message
    assert "us-west-2" in region_finding.message


def test_the_template_and_the_region_rule_name_the_same_regions():
    """The stack refuses to deploy outside these Regions (a template Rule); Plan refuses per model inside them."""
    template = load_template(Path(__file__).parents[2] / "template.yaml")
    (assertion,) = template["Rules"]["CustomModelImportRegion"]["Assertions"]
    regions, _ = assertion["Assert"]["Fn::Contains"]
    assert set(regions) == IMPORT_REGIONS
