"""Fixtures that run the real state machine definition through moto's interpreter with the real handlers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelferry_cli.local.bedrock_emulator import EmulatorBehaviour
from modelferry_cli.local.hub_server import LocalHub
from modelferry_cli.local.rig import LocalRig


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as local_hub:
        yield local_hub


@pytest.fixture
def behaviour() -> EmulatorBehaviour:
    return EmulatorBehaviour()


@pytest.fixture
def rig(hub: LocalHub, behaviour: EmulatorBehaviour) -> Iterator[LocalRig]:
    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour) as local_rig:
        yield local_rig
