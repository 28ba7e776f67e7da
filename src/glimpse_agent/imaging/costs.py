"""Estimated USD cost of one image per backend. Used to keep a persona under its daily budget,
so every figure errs on the high side; ``cost_usd`` in a backend's section overrides it.

Figures are list prices as published when this was written (they change): check your
provider's pricing page and set ``cost_usd`` if you need the budget to be exact.
"""

from __future__ import annotations

# Backends whose price does not depend on the request.
FLAT_COSTS: dict[str, float] = {
    "glif": 0.0,  # the Simple API is free during its beta (credits, not dollars)
    "viewcomfy": 0.02,  # a few GPU-seconds on a serverless deployment
    "huggingface": 0.0,  # FLUX.1-schnell on the free Inference Providers tier
    "local": 0.0,
}

# Glimpse's BYOK generator bills the user's key at the chosen provider.
GLIMPSE_PROVIDER_COSTS: dict[str, float] = {
    "huggingface": 0.0,
    "openai": 0.04,
    "google": 0.04,
    "replicate": 0.003,
    "fal": 0.003,
    "stability": 0.04,
}

# OpenAI per image by (quality, size), for the gpt-image family. The table is the older
# gpt-image-1 price list, higher than its successors: a safe upper bound for budgets.
_OPENAI_SQUARE = {"low": 0.011, "medium": 0.042, "high": 0.167}
_OPENAI_OBLONG = {"low": 0.016, "medium": 0.063, "high": 0.25}
_OPENAI_MODEL_FACTOR: dict[str, float] = {
    "gpt-image-1-mini": 0.25,
}


def flat_cost(backend: str, override: float | None = None) -> float:
    """The cost of one image on a flat-priced backend (``override`` wins)."""
    if override is not None:
        return override
    return FLAT_COSTS[backend]


def glimpse_cost(provider: str, override: float | None = None) -> float:
    """The cost of one Glimpse BYOK image paid with a key at ``provider``."""
    if override is not None:
        return override
    return GLIMPSE_PROVIDER_COSTS.get(provider, max(GLIMPSE_PROVIDER_COSTS.values()))


def openai_cost(model: str, quality: str, size: str, override: float | None = None) -> float:
    """The cost of one OpenAI image. Unknown sizes count as the dearer oblong ones and
    "auto" quality as "high", so an estimate is never below the bill."""
    if override is not None:
        return override
    table = _OPENAI_SQUARE if size == "1024x1024" else _OPENAI_OBLONG
    price = table.get(quality, table["high"])
    return round(price * _OPENAI_MODEL_FACTOR.get(model, 1.0), 6)
