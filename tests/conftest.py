"""Session-wide guards: the tests talk to 127.0.0.1 only."""

from __future__ import annotations

from modelferry_cli.local.rig import no_registry_fetch

# huggingface_hub would fetch its agent registry from huggingface.co on the first Hub call of the session.
no_registry_fetch()
