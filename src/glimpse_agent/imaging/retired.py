"""Image models their makers have retired, and the configured ones among them.

A retired model fails every generation. ``config`` already refuses a retired
``[images.openai] model``; this table also covers what the config cannot see: Glimpse's BYOK
``openai`` provider is documented as DALL-E 3 (its API page, as of this writing), which OpenAI
retired. ``check`` shows these as warnings: the service may have moved on without saying so.
"""

from __future__ import annotations

from glimpse_agent.config import ImagesSection

#: model -> when its maker retired it (OpenAI's deprecations page)
RETIRED_MODELS = {
    "dall-e-2": "May 2026",
    "dall-e-3": "May 2026",
    "gpt-image-1": "October 2026",
}
#: Current OpenAI image models (openai-python's ``ImageModel``), newest first.
CURRENT_OPENAI_IMAGE_MODELS = ("gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini")
#: Glimpse BYOK provider -> the model Glimpse's API page says it runs.
GLIMPSE_PROVIDER_MODELS = {
    "huggingface": "FLUX.1-schnell",
    "openai": "dall-e-3",
    "google": "Gemini image generation",
    "replicate": "FLUX-schnell",
    "fal": "FLUX-schnell",
    "stability": "Stable Diffusion 3",
}


def retired_model_warnings(images: ImagesSection) -> dict[str, str]:
    """``check`` item -> why its configured model (or provider) is known to be retired."""
    warnings: dict[str, str] = {}
    if images.glimpse is not None:
        provider = images.glimpse.provider
        model = GLIMPSE_PROVIDER_MODELS.get(provider, "")
        if model in RETIRED_MODELS:
            warnings["images.glimpse"] = (
                f'Glimpse documents its "{provider}" provider as {model}, which OpenAI retired '
                f"in {RETIRED_MODELS[model]}: its generations may fail; consider "
                'provider = "huggingface" or [images.openai] with a current model '
                f'("{CURRENT_OPENAI_IMAGE_MODELS[0]}")'
            )
    if images.openai is not None and images.openai.model in RETIRED_MODELS:
        model = images.openai.model
        warnings["images.openai"] = (
            f"{model} was retired in {RETIRED_MODELS[model]}; use "
            f'"{CURRENT_OPENAI_IMAGE_MODELS[0]}" or "{CURRENT_OPENAI_IMAGE_MODELS[1]}"'
        )
    return warnings
