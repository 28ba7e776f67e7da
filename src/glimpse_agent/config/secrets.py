"""The secret values of a config: what the safety filter must never publish and what error texts
must never quote. One walk over the models, for every caller."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, SecretStr


class _Config(Protocol):
    """What ``secret_values`` needs of an ``AgentConfig`` (the models import this module to
    register their secrets, so it must not import them back)."""

    def glimpse_key(self) -> str | None: ...


def secret_strings(model: BaseModel) -> list[str]:
    """Every non-empty ``SecretStr`` value in ``model`` and the models it holds, recursively."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found += secret_strings(value)
    return [s for s in found if s]


def secret_values(config: _Config) -> list[str]:
    """Every secret of ``config``: its ``SecretStr`` values and the Glimpse key, also when that
    key lives in the file ``register`` wrote rather than in ``agent.toml``."""
    found = secret_strings(config) if isinstance(config, BaseModel) else []
    key = config.glimpse_key()
    if key:
        found.append(key)
    return found
