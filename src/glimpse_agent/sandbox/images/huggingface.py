"""An emulator of Hugging Face text-to-image inference, as ``AsyncInferenceClient`` calls it:
``POST /models/{model}`` (the hf-inference route) or any bare ``POST`` path (an Inference
Endpoint URL), JSON ``{"inputs": prompt, "parameters": {width, height, num_inference_steps,
seed, ...}}``, ``Authorization: Bearer hf_...``; the answer is the raw image bytes.

Point ``[images.huggingface] base_url`` at ``URL/models/black-forest-labs/FLUX.1-schnell``
(or at ``URL/`` for the bare route).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse_agent.sandbox.images.faults import Faults, generic_response
from glimpse_agent.sandbox.images.pictures import png_for

TOKEN = "hf_sandboxtoken0001"
MODEL = "black-forest-labs/FLUX.1-schnell"
MAX_SIDE = 1024
# "loading": the 503 a cold model answers, with estimated_time. "content": a 400 refusal.
# "error_200": HTTP 200 with a JSON error instead of image bytes. "cut": the image breaks off.
FAULT_KINDS = frozenset({"status", "hang", "loading", "content", "error_200", "cut"})


@dataclass
class HFState:
    """What the emulator serves and saw. Tests read ``requests`` and arm ``faults``."""

    tokens: set[str] = field(default_factory=lambda: {TOKEN})
    models: set[str] = field(default_factory=lambda: {MODEL})
    faults: Faults = field(default_factory=Faults)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)


def _state(request: Request) -> HFState:
    state: HFState = request.app.state.hf
    return state


def _error(message: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _dimension(value: Any) -> int | str:
    if value is None:
        return 1024
    if not isinstance(value, int) or isinstance(value, bool) or not 64 <= value <= 2048:
        return "width and height must be integers between 64 and 2048"
    if value % 8:
        return "width and height must be multiples of 8"
    return value


def create_hf_app(state: HFState | None = None) -> Starlette:
    """The Hugging Face inference emulator; its ``HFState`` is ``app.state.hf``."""

    async def text_to_image(request: Request) -> Response:
        st = _state(request)
        model = request.path_params.get("model")
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer hf_") or token not in st.tokens:
            return _error("Invalid credentials in Authorization header", 401)
        if model is not None and model not in st.models:
            return _error(f"Model {model} does not exist", 404)
        raw = await request.body()  # before any hang: a client that gave up is gone after
        fault = st.faults.take(FAULT_KINDS)
        if fault is not None and fault.kind == "loading":
            return _error(f"Model {model or MODEL} is currently loading", 503, estimated_time=20.0)
        if fault is not None and fault.kind == "content":
            return _error("Your prompt was flagged by the safety checker (NSFW content)", 400)
        response = await generic_response(fault, st.faults, "error", ok_media_type="image/png")
        if response is not None:
            return response
        try:
            body = json.loads(raw)
        except ValueError:
            return _error("Body must be JSON", 400)
        prompt = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            return _error("inputs must be a non-empty string", 422)
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            return _error("parameters must be an object", 422)
        width, height = _dimension(params.get("width")), _dimension(params.get("height"))
        for value in (width, height):
            if isinstance(value, str):
                return _error(value, 422)
        assert isinstance(width, int) and isinstance(height, int)
        with st._lock:
            st.requests.append(
                {
                    "path": request.url.path,
                    "body": body,
                    "accept": request.headers.get("accept"),
                    "content_type": request.headers.get("content-type"),
                }
            )
        seed = f"{prompt}|{params.get('seed')}|{params.get('num_inference_steps')}"
        return Response(
            png_for(seed, min(width, MAX_SIDE), min(height, MAX_SIDE)), media_type="image/png"
        )

    app = Starlette(
        routes=[
            Route("/models/{model:path}", text_to_image, methods=["POST"]),
            Route("/{rest:path}", text_to_image, methods=["POST"]),
        ]
    )
    app.state.hf = state or HFState()
    return app
