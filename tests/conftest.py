"""Session-wide guards (the tests talk to 127.0.0.1 only) and the fixtures every workflow-level suite uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.rig import LocalRig, no_registry_fetch

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
