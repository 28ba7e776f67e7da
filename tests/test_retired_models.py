"""Retired image models: the table `check` warns from, and current defaults."""

from __future__ import annotations

import typing

from glimpse_agent.config import ImagesSection, OpenAIImagesSection
from glimpse_agent.imaging.retired import (
    CURRENT_OPENAI_IMAGE_MODELS,
    RETIRED_MODELS,
    retired_model_warnings,
)


def test_glimpse_openai_provider_is_warned_about_and_others_are_not() -> None:
    """provider = "openai" (documented as DALL-E 3) warns; huggingface does not."""
    warned = retired_model_warnings(
        ImagesSection.model_validate({"glimpse": {"provider": "openai", "api_key": "k"}})
    )
    assert list(warned) == ["images.glimpse"] and "dall-e-3" in warned["images.glimpse"]
    for provider in ("huggingface", "google", "replicate", "fal", "stability"):
        images = ImagesSection.model_validate({"glimpse": {"provider": provider, "api_key": "k"}})
        assert retired_model_warnings(images) == {}


def test_the_openai_default_is_current_and_known_to_the_sdk() -> None:
    """The default [images.openai] model is a current one, listed by the installed SDK's
    ImageModel, and none of the current ones is in the retired table."""
    from openai.types import ImageModel

    default = OpenAIImagesSection.model_validate({"api_key": "sk-test"}).model
    assert default in CURRENT_OPENAI_IMAGE_MODELS and default not in RETIRED_MODELS
    known = set(typing.get_args(ImageModel))
    assert set(CURRENT_OPENAI_IMAGE_MODELS) <= known
    assert set(RETIRED_MODELS) <= known  # the SDK still names them; the API refuses them
