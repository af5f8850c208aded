"""The metrics namespace and service name are code constants; the template's dashboard and Powertools variables
must name the same ones."""

from __future__ import annotations

from pathlib import Path

from modelferry.adapters import observability
from modelferry_cli.local.template import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def test_template_and_code_agree_on_namespace_and_service() -> None:
    variables = load_template(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == observability.METRICS_NAMESPACE
    assert variables["POWERTOOLS_SERVICE_NAME"] == observability.SERVICE


def test_metrics_have_a_namespace_whatever_the_environment_was_at_import() -> None:
    assert observability.metrics.namespace == observability.METRICS_NAMESPACE
    assert observability.logger.service == observability.SERVICE
