"""An emulator of OpenAI's image generation: ``POST /v1/images/generations`` (and
``GET /v1/models/{model}``, which ``check`` uses). It accepts the current gpt-image models and
refuses retired ones (dall-e-2, dall-e-3, gpt-image-1) as the real API does, checks size, n
and quality, and answers ``data[0].b64_json`` with a real PNG.

``image_routes(state)`` gives the routes, to compose with the chat emulator into one OpenAI
app; ``create_openai_images_app()`` serves them alone. Point ``base_url`` at ``URL/v1``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse_agent.sandbox.images.faults import Faults, generic_response
from glimpse_agent.sandbox.images.pictures import png_for
from glimpse_agent.sandbox.openai_errors import openai_error as _error

API_KEY = "sk-sandbox-images-0001"
IMAGE_MODELS = frozenset({"gpt-image-1.5", "gpt-image-2", "gpt-image-1-mini"})
RETIRED = frozenset({"dall-e-2", "dall-e-3", "gpt-image-1"})
SIZES = {
    "1024x1024": (1024, 1024),
    "1536x1024": (1536, 1024),
    "1024x1536": (1024, 1536),
    "auto": (1024, 1024),
}
QUALITIES = frozenset({"low", "medium", "high", "auto"})
# "moderation": the 400 the safety system answers. "quota": a 429 insufficient_quota.
# "error_200": HTTP 200 with an error object and no data. "cut": the answer breaks off.
FAULT_KINDS = frozenset({"status", "hang", "moderation", "quota", "error_200", "cut"})


@dataclass
class OpenAIImagesState:
    """Keys the emulator accepts, what it saw, and faults tests arm."""

    keys: set[str] = field(default_factory=lambda: {API_KEY})
    faults: Faults = field(default_factory=Faults)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)


def _authorized(request: Request, state: OpenAIImagesState) -> bool:
    auth = request.headers.get("authorization", "")
    return auth.startswith("Bearer sk-") and auth.removeprefix("Bearer ") in state.keys


def _unauthorized() -> JSONResponse:
    return _error("Incorrect API key provided.", 401, code="invalid_api_key")


def _validate(body: dict[str, Any]) -> JSONResponse | None:
    model = body.get("model")
    if model in RETIRED:
        return _error(
            f"The model `{model}` has been deprecated and is no longer available.",
            404,
            code="model_not_found",
            param="model",
        )
    if model not in IMAGE_MODELS:
        return _error(
            f"The model `{model}` does not exist or you do not have access to it.",
            404,
            code="model_not_found",
            param="model",
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 32000:
        return _error("prompt must be a string of 1 to 32000 characters", 400, param="prompt")
    if body.get("size", "auto") not in SIZES:
        return _error(
            f"Invalid size. Supported: {', '.join(SIZES)}", 400, code="invalid_value", param="size"
        )
    if body.get("quality", "auto") not in QUALITIES:
        return _error("Invalid quality.", 400, code="invalid_value", param="quality")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        return _error("n must be an integer between 1 and 10", 400, param="n")
    if "response_format" in body:
        return _error(
            "response_format is not supported for gpt-image models",
            400,
            code="unknown_parameter",
            param="response_format",
        )
    return None


def image_routes(state: OpenAIImagesState) -> list[Route]:
    """The image routes, bound to ``state`` (compose them into a larger OpenAI emulator)."""

    async def generations(request: Request) -> Response:
        if not _authorized(request, state):
            return _unauthorized()
        raw = await request.body()  # before any hang: a client that gave up is gone after
        fault = state.faults.take(FAULT_KINDS)
        if fault is not None and fault.kind == "moderation":
            return _error(
                "Your request was rejected by the safety system.", 400, code="moderation_blocked"
            )
        if fault is not None and fault.kind == "quota":
            return _error(
                "You exceeded your current quota.",
                429,
                type_="insufficient_quota",
                code="insufficient_quota",
            )
        response = await generic_response(fault, state.faults, "openai")
        if response is not None:
            return response
        try:
            body = json.loads(raw)
        except ValueError:
            return _error("We could not parse the JSON body of your request.", 400)
        if not isinstance(body, dict):
            return _error("The body must be a JSON object.", 400)
        refused = _validate(body)
        if refused is not None:
            return refused
        with state._lock:
            state.requests.append(body)
        size = body.get("size", "auto")
        width, height = SIZES[size]
        data = [
            {
                "b64_json": base64.b64encode(
                    png_for(f"{body['prompt']}|{i}", width, height)
                ).decode("ascii")
            }
            for i in range(body.get("n", 1))
        ]
        return JSONResponse(
            {
                "created": int(time.time()),
                "data": data,
                "output_format": "png",
                "size": f"{width}x{height}",
                "quality": body.get("quality", "auto"),
                "background": "opaque",
                "usage": {
                    "input_tokens": 20,
                    "output_tokens": 1056,
                    "total_tokens": 1076,
                    "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
                },
            }
        )

    async def model(request: Request) -> Response:
        if not _authorized(request, state):
            return _unauthorized()
        name = request.path_params["model"]
        if name not in IMAGE_MODELS:
            return _error(
                f"The model `{name}` does not exist or you do not have access to it.",
                404,
                code="model_not_found",
            )
        return JSONResponse(
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}
        )

    return [
        Route("/v1/images/generations", generations, methods=["POST"]),
        Route("/v1/models/{model}", model, methods=["GET"]),
    ]


def create_openai_images_app(state: OpenAIImagesState | None = None) -> Starlette:
    """The image routes alone as an app; the state is ``app.state.openai_images``."""
    st = state or OpenAIImagesState()
    app = Starlette(routes=image_routes(st))
    app.state.openai_images = st
    return app
