from __future__ import annotations

from collections.abc import Iterator

import pytest

from glimpse_agent.redaction import forget_all_secrets


@pytest.fixture(autouse=True)
def _fresh_secret_registry() -> Iterator[None]:
    """Each test starts with no registered secrets, so redaction tests cannot pass by accident."""
    forget_all_secrets()
    yield
    forget_all_secrets()
