"""Making images: one module per backend behind the small ``ImageBackend`` protocol, and a
router that walks the configured chain with fallback, a circuit breaker, a deadline and the
persona's daily budget.

    router = build_router(config, persona, spend=ledger, clock=clock, state_dir=state_dir)
    image = await router.generate(ImageRequest(prompt="...", persona=persona.name))
    ready = prepare_for_post(image)          # image_url, or checked bytes + mime_type

``openai`` and ``huggingface_hub`` are imported only when their backend first runs.

May import: ``glimpse`` (Glimpse's own generator), ``http``, ``config``, ``persona``, ``errors``,
``logs``, ``clock``. Never ``writing``, the ledger (spend comes in as a ``SpendBook``), the agent.
"""

from __future__ import annotations

from glimpse_agent.imaging.base import (
    Attempt,
    GeneratedImage,
    ImageBackend,
    ImageRequest,
    ImagingFailed,
    ProgressCallback,
    SpendBook,
)
from glimpse_agent.imaging.build import build_router
from glimpse_agent.imaging.prepare import MAX_POST_BYTES, PostImage, prepare_for_post
from glimpse_agent.imaging.progress import ProgressBar
from glimpse_agent.imaging.router import ImageRouter

__all__ = [
    "MAX_POST_BYTES",
    "Attempt",
    "GeneratedImage",
    "ImageBackend",
    "ImageRequest",
    "ImageRouter",
    "ImagingFailed",
    "PostImage",
    "ProgressBar",
    "ProgressCallback",
    "SpendBook",
    "build_router",
    "prepare_for_post",
]
