"""Assembling the image router from ``agent.toml``: one backend per name in
``[images] order``, in that order. SDK-backed backends import their SDK only when first used."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx

from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig
from glimpse_agent.errors import ConfigError, Problem
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.imaging.backends.glif import GlifBackend
from glimpse_agent.imaging.backends.glimpse_byok import GlimpseImagesBackend
from glimpse_agent.imaging.backends.huggingface import HuggingFaceBackend
from glimpse_agent.imaging.backends.local import LocalBackend
from glimpse_agent.imaging.backends.openai_images import OpenAIImagesBackend
from glimpse_agent.imaging.backends.viewcomfy import ViewComfyBackend
from glimpse_agent.imaging.base import ImageBackend, ProgressCallback, SpendBook
from glimpse_agent.imaging.router import Closer, ImageRouter
from glimpse_agent.persona import Persona


def build_router(
    config: AgentConfig,
    persona: Persona,
    *,
    spend: SpendBook,
    clock: Clock,
    state_dir: Path,
    http: httpx.AsyncClient | None = None,
    glimpse: GlimpseClient | None = None,
    progress: ProgressCallback | None = None,
) -> ImageRouter:
    """The router for ``config.images``. ``http`` and ``glimpse`` are shared clients (made
    here when missing and needed, then closed by ``router.aclose()``); ``progress`` receives
    ViewComfy's progress. Raises ``ConfigError`` when a backend cannot be set up."""
    images = config.images
    closers: list[Closer] = []

    def shared_http() -> httpx.AsyncClient:
        nonlocal http
        if http is None:
            http = httpx.AsyncClient(follow_redirects=True)
            closers.append(http.aclose)
        return http

    def glimpse_client() -> GlimpseClient:
        nonlocal glimpse
        if glimpse is None:
            key = config.glimpse_key()
            if not key:
                raise ConfigError(
                    [
                        Problem(
                            str(config.source),
                            "images.order",
                            "the glimpse image backend needs a Glimpse key "
                            "(glimpse.api_key, or run `glimpse-agent register`)",
                        )
                    ]
                )
            glimpse = GlimpseClient(
                config.glimpse.base_url,
                key,
                http=shared_http(),
                timeout=config.glimpse.timeout,
                clock=clock,
            )
        return glimpse

    backends: list[ImageBackend] = []
    for name in images.chain:
        if name == "glif" and images.glif is not None:
            backends.append(GlifBackend(images.glif, http=shared_http(), clock=clock))
        elif name == "viewcomfy" and images.viewcomfy is not None:
            backends.append(
                ViewComfyBackend(
                    images.viewcomfy, http=shared_http(), clock=clock, progress=progress
                )
            )
        elif name == "glimpse" and images.glimpse is not None:
            backends.append(
                GlimpseImagesBackend(images.glimpse, client=glimpse_client(), state_dir=state_dir)
            )
        elif name == "huggingface" and images.huggingface is not None:
            backends.append(HuggingFaceBackend(images.huggingface, clock=clock))
        elif name == "openai" and images.openai is not None:
            backends.append(OpenAIImagesBackend(images.openai, clock=clock))
        elif name == "local":
            backends.append(LocalBackend(images.local))
        else:  # config validation makes this unreachable; keep the message for the day it is not
            raise ConfigError(
                [
                    Problem(
                        str(config.source),
                        "images.order",
                        f"{name} is listed but has no [images.{name}] section",
                    )
                ]
            )
    return ImageRouter(
        backends,
        spend=spend,
        budget_usd_per_day=persona.budget_usd_per_day,
        clock=clock,
        deadline_seconds=images.deadline_seconds,
        breaker_failures=images.breaker_failures,
        breaker_cooldown=timedelta(minutes=images.breaker_cooldown_minutes),
        persona=persona.name,
        closers=closers,
    )
