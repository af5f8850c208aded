"""Session-wide guards (the tests talk to 127.0.0.1 only) and the fixtures every workflow-level suite uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.rig import LocalRig, no_registry_fetch

# Property tests assert properties, never speed: hypothesis's default 200 ms deadline per example fails them on a
# loaded machine (it did, on this shared 2-core box), so no deadline.
settings.register_profile("modelferry", deadline=None)
settings.load_profile("modelferry")

# huggingface_hub would fetch its agent registry from huggingface.co on the first Hub call of the session.
no_registry_fetch()


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as local_hub:
        yield local_hub


@pytest.fixture
def behaviour() -> EmulatorBehaviour:
    return EmulatorBehaviour()


@pytest.fixture
def rig(hub: LocalHub, behaviour: EmulatorBehaviour) -> Iterator[LocalRig]:
    """The real definition and handlers under moto's interpreter, against `hub` and a Bedrock emulator."""
    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour) as local_rig:
        yield local_rig


# Every call the rig's IAM guard refused, by test: a refusal no test expects is either a permission missing from
# template.yaml or a gap in the rig's call mapping (modelferry_cli.local.iam.calls). Listed at the end of the run.
_iam_denials_by_test: dict[str, list[str]] = {}


@pytest.fixture(autouse=True)
def _record_iam_denials(request: pytest.FixtureRequest) -> Iterator[None]:
    from modelferry_cli.local.iam import guard

    before = len(guard.denials)
    yield
    found = [f"{name}: {v.request.action} on {v.request.resource}" for name, v in guard.denials[before:]]
    if found:
        _iam_denials_by_test[request.node.nodeid] = found


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _iam_denials_by_test:
        terminalreporter.section("calls the rig's IAM guard refused")
        for test, found in _iam_denials_by_test.items():
            terminalreporter.write_line(f"{test}: {'; '.join(sorted(set(found)))}")
