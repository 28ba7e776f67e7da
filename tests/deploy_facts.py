"""What the deploy tests share: where the deploy files are, and the credential id of every
secret key of agent.toml (the unit's LoadCredential= name, the container's /run/secrets name,
the file in /etc/glimpse-agent/credentials/<persona>/), as docs/deploy.md documents them."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, SecretStr

from glimpse_agent.config import AgentConfig

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "glimpse-agent@.service"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
FLEET_COMPOSE = REPO / "compose.fleet.yaml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

CREDENTIALS: dict[str, str] = {
    "glimpse.api_key": "glimpse",
    "images.glif.token": "glif",
    "images.viewcomfy.client_id": "viewcomfy_client_id",
    "images.viewcomfy.client_secret": "viewcomfy_client_secret",
    "images.glimpse.api_key": "glimpse_images",
    "images.huggingface.token": "huggingface",
    "images.openai.api_key": "openai",
    "captions.langflow.api_key": "langflow",
    "llm.api_key": "llm",
}


def _types(annotation: object) -> Iterator[object]:
    """``annotation`` and the members of any union or optional in it, flattened."""
    args = typing.get_args(annotation)
    if not args:
        yield annotation
        return
    for arg in args:
        yield from _types(arg)


def secret_keys(model: type[BaseModel] = AgentConfig, prefix: str = "") -> list[str]:
    """Every ``SecretStr`` key of ``model``'s file, dotted (``images.glif.token``)."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        kinds = list(_types(field.annotation))
        if SecretStr in kinds:
            found.append(prefix + name)
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found += secret_keys(kind, f"{prefix}{name}.")
    return found
