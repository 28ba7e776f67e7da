from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from glimpse_agent.redaction import forget_all_secrets
from glimpse_agent.sandbox.glimpse.testing import GlimpseHost, GlimpseSandbox


@pytest.fixture(autouse=True)
def _fresh_secret_registry() -> Iterator[None]:
    """Each test starts with no registered secrets, so redaction tests cannot pass by accident."""
    forget_all_secrets()
    yield
    forget_all_secrets()


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI tests configure logging onto pytest's capture stream, which closes after the test:
    put structlog and the root logger back so later tests never write to a closed stream."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "stream", None) is not None and not isinstance(
            handler, logging.NullHandler
        ):
            root.removeHandler(handler)


@pytest.fixture(scope="module")
def host() -> Iterator[GlimpseHost]:
    """One emulated Glimpse server per test module (a server takes ~0.2 s to stop)."""
    with GlimpseHost() as h:
        yield h


@pytest.fixture
def glimpse(host: GlimpseHost) -> Iterator[GlimpseSandbox]:
    """A fresh, empty Glimpse world on the module's server, with its own simulated clock."""
    with host.serve(population=0) as sandbox:
        yield sandbox
