"""An emulator of Glif: the Simple API (``POST /`` and ``POST /{id}``), the glif.app API
(``GET /api/glifs?id=``, ``GET /api/me``) and the images it makes (``GET /images/{run}.png``,
real PNGs). Point ``[images.glif]`` at it with ``base_url = URL`` and ``api_url = URL/api``.

Like the real Simple API it answers HTTP 200 with ``{"error": ...}`` for a failed run, fills
missing inputs with the glif's defaults unless ``?strict=1``, and takes inputs as a list (block
order) or an object (block names), strings only.
"""

from __future__ import annotations

import itertools
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

TOKEN = "glif-test-token-0001"
IMAGE_SIZE = 512
#: Failure texts a run can answer (HTTP 200 with ``{"error": text}``), each armed as a fault by
#: its name: ``faults.arm("cuda_oom")``. Glif publishes no list of its error texts; these are
#: what a ComfyUI-backed glif, Glif's limits and its strict mode plausibly say, worded so that
#: a classifier keyed to one phrase (``"out of"``, ``"missing input"``) can be caught out.
FAILURE_TEXTS = {
    "cuda_oom": "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.69 GiB total "
    "capacity; 21.02 GiB already allocated)",
    "node_failure": "Error running ComfyBlock: KSampler: expected scalar type Half but found Float",
    "strict_unknown": "Input validation failed: 1 of 2 required values were not provided",
    "out_of_credits": "You are out of credits. Buy more at https://glif.app/pricing",
    "rate_limited": "Too many requests: please slow down",
    "nsfw": "NSFW content detected in the output. Try a different prompt.",
}
# Faults a run can take; "metadata" faults (a status code) hit GET /api/glifs instead.
RUN_FAULTS = frozenset({"status", "hang", "error_200", "cut", *FAILURE_TEXTS})


def _text_input(name: str, default: str) -> dict[str, Any]:
    return {"name": name, "type": "TextInputBlock", "params": {"label": name, "value": default}}


def _comfy(name: str, unet: str) -> dict[str, Any]:
    # A ComfyBlock's workflow is a string, and in the wild not always valid JSON.
    workflow = (
        '{"12": {"class_type": "UNETLoader", "inputs": {"unet_name": "'
        + unet
        + '"}}, "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{prompt}"'
    )
    return {"name": name, "type": "ComfyBlock", "params": {"value": workflow}}


def _glif(glif_id: str, nodes: list[dict[str, Any]], output: str = "IMAGE") -> dict[str, Any]:
    return {
        "id": glif_id,
        "name": glif_id,
        "outputType": output,
        "user": {"username": "sandbox"},
        "data": {"nodes": nodes},
    }


def default_glifs() -> dict[str, dict[str, Any]]:
    """The registered glifs: clean ones, forbidden ones, nested and cyclic ones."""
    glifs = [
        _glif(
            "glif-schnell",
            [
                _text_input("prompt", "a lighthouse at dawn"),
                _comfy("image", "flux1-schnell.safetensors"),
            ],
        ),
        _glif(
            "glif-two-inputs",
            [
                _text_input("subject", "a fox"),
                _text_input("style", "woodcut"),
                {
                    "name": "image",
                    "type": "ImageBlock",
                    "params": {"model": "flux-schnell", "prompt": "{subject}, {style}"},
                },
            ],
        ),
        _glif(
            "glif-flux-dev",
            [_text_input("prompt", "a castle"), _comfy("image", "flux1-dev-fp8.safetensors")],
        ),
        _glif(
            "glif-dalle",
            [
                _text_input("prompt", "a robot"),
                {"name": "image", "type": "ImageBlock", "params": {"model": "DALL-E 3"}},
            ],
        ),
        _glif(
            "glif-sd3",
            [
                _text_input("prompt", "a harbour"),
                _comfy("image", "sd3_medium_incl_clips.safetensors"),
            ],
        ),
        _glif(
            "glif-flux-pro",
            [
                _text_input("prompt", "a desert"),
                {"name": "image", "type": "ImageBlock", "params": {"model": "flux-pro-1.1-ultra"}},
            ],
        ),
        _glif(
            # Forbidden only two levels down, inside a ComfyBlock of a nested glif's nested glif.
            "glif-deep-forbidden",
            [
                _text_input("prompt", "a meadow"),
                {"name": "outer", "type": "GlifBlock", "params": {"id": "glif-nests-sd3"}},
            ],
        ),
        _glif(
            "glif-nests-sd3",
            [{"name": "inner", "type": "GlifBlock", "params": {"id": "glif-sd3"}}],
        ),
        _glif(
            "glif-nests-forbidden",
            [
                _text_input("prompt", "a garden"),
                {
                    "name": "inner",
                    "type": "GlifBlock",
                    "params": {"id": "glif-flux-dev", "inputValues": ["{prompt}"]},
                },
                _comfy("image", "flux1-schnell.safetensors"),
            ],
        ),
        _glif(
            "glif-cycle-a",
            [
                _text_input("prompt", "a loop"),
                {"name": "b", "type": "GlifBlock", "params": {"id": "glif-cycle-b"}},
                _comfy("image", "flux1-schnell.safetensors"),
            ],
        ),
        _glif(
            "glif-cycle-b",
            [
                {"name": "a", "type": "GlifBlock", "params": {"id": "glif-cycle-a"}},
                {
                    "name": "text",
                    "type": "GPTBlock",
                    "params": {"model": "gpt-4o-mini", "prompt": "{a}"},
                },
            ],
            "TEXT",
        ),
        _glif(
            "glif-text",
            [
                _text_input("prompt", "a haiku"),
                {
                    "name": "text",
                    "type": "GPTBlock",
                    "params": {"model": "gpt-4o-mini", "prompt": "{prompt}"},
                },
            ],
            "TEXT",
        ),
    ]
    return {g["id"]: g for g in glifs}


@dataclass
class GlifState:
    """What the emulator knows and what it saw. Tests read ``runs`` and arm ``faults``."""

    tokens: set[str] = field(default_factory=lambda: {TOKEN})
    glifs: dict[str, dict[str, Any]] = field(default_factory=default_glifs)
    credits: int = 100
    faults: Faults = field(default_factory=Faults)
    runs: list[dict[str, Any]] = field(default_factory=list)
    metadata_requests: list[str] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_run_id(self) -> str:
        with self._lock:
            return f"run{next(self._ids):05d}"


def _authorized(request: Request, state: GlifState) -> bool:
    auth = request.headers.get("authorization", "")
    return auth.startswith("Bearer ") and auth[len("Bearer ") :] in state.tokens


def _fail(glif_id: str, message: str) -> JSONResponse:
    # The Simple API's legacy contract: failures are HTTP 200 with an "error" field.
    return JSONResponse({"id": glif_id, "error": message})


def _resolve_inputs(glif: dict[str, Any], given: Any, strict: bool) -> dict[str, str] | str:
    """The named input values of a run, or an error message."""
    blocks = [
        n
        for n in glif["data"]["nodes"]
        if n["type"].endswith("InputBlock") or n["type"] == "MultipickBlock"
    ]
    names = [b["name"] for b in blocks]
    if isinstance(given, list):
        if len(given) > len(names):
            return f"too many inputs: the glif takes {len(names)}"
        given = dict(zip(names, given, strict=False))
    if not isinstance(given, dict):
        return "inputs must be a list or an object"
    if any(not isinstance(v, str) for v in given.values()):
        return "inputs must be strings"
    unknown = sorted(set(given) - set(names))
    if unknown:
        return f"unknown input(s): {', '.join(unknown)}; this glif takes {', '.join(names)}"
    missing = [n for n in names if n not in given]
    if strict and missing:
        return f"missing input(s) in strict mode: {', '.join(missing)}"
    defaults = {b["name"]: str(b["params"].get("value", "")) for b in blocks}
    return {**defaults, **given}


def _state(request: Request) -> GlifState:
    state: GlifState = request.app.state.glif
    return state


def create_glif_app(state: GlifState | None = None) -> Starlette:
    """The Glif emulator. Its ``GlifState`` is ``app.state.glif``; a test may swap in a fresh
    one between tests to reuse a running server."""

    async def run(request: Request) -> Response:
        st = _state(request)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be an object"}, status_code=400)
        glif_id = str(request.path_params.get("glif_id") or body.get("id") or "")
        if not _authorized(request, st):
            return JSONResponse({"error": "Unauthorized: invalid API token"}, status_code=401)
        fault = st.faults.take(RUN_FAULTS)
        if fault is not None and fault.kind == "error_200":
            return _fail(glif_id, fault.message)
        if fault is not None and fault.kind in FAILURE_TEXTS:
            return _fail(glif_id, FAILURE_TEXTS[fault.kind])
        response = await generic_response(fault, st.faults)
        if response is not None:
            return response
        glif = st.glifs.get(glif_id)
        if glif is None:
            return _fail(glif_id, f"Glif not found: {glif_id}")
        strict = request.query_params.get("strict") in {"1", "true"}
        inputs = _resolve_inputs(glif, body.get("inputs", []), strict)
        if isinstance(inputs, str):
            return _fail(glif_id, inputs)
        with st._lock:
            if st.credits <= 0:
                return _fail(glif_id, "You have run out of credits")
            st.credits -= 1
            st.runs.append(
                {
                    "id": glif_id,
                    "inputs": inputs,
                    "strict": strict,
                    "raw_inputs": body.get("inputs"),
                }
            )
        if glif["outputType"] != "IMAGE":
            text = " / ".join(inputs.values())
            return JSONResponse(
                {
                    "id": glif_id,
                    "inputs": inputs,
                    "output": text,
                    "outputFull": {"type": "TEXT", "value": text},
                    "price": "0",
                }
            )
        run_id = st.next_run_id()
        st.images[run_id] = png_for(
            f"{glif_id}:{json.dumps(inputs, sort_keys=True)}", IMAGE_SIZE, IMAGE_SIZE
        )
        url = f"{str(request.base_url).rstrip('/')}/images/{run_id}.png"
        return JSONResponse(
            {
                "id": glif_id,
                "inputs": inputs,
                "output": url,
                "price": "0",
                "nodes": [],
                "outputFull": {
                    "type": "IMAGE",
                    "value": url,
                    "width": IMAGE_SIZE,
                    "height": IMAGE_SIZE,
                },
            }
        )

    async def glifs(request: Request) -> Response:
        st = _state(request)
        glif_id = request.query_params.get("id", "")
        st.metadata_requests.append(glif_id)
        fault = st.faults.take(frozenset({"metadata"}))
        if fault is not None:
            return JSONResponse({"error": fault.message}, status_code=fault.status)
        glif = st.glifs.get(glif_id)
        return JSONResponse([glif] if glif else [])

    async def me(request: Request) -> Response:
        st = _state(request)
        if not _authorized(request, st):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        return JSONResponse(
            {
                "user": {"id": "u1", "name": "sandbox", "username": "sandbox"},
                "credits": {"remaining": st.credits, "limit": 100, "label": "daily"},
            }
        )

    async def image(request: Request) -> Response:
        st = _state(request)
        data = st.images.get(request.path_params["run_id"])
        if data is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(data, media_type="image/png")

    app = Starlette(
        routes=[
            Route("/", run, methods=["POST"]),
            Route("/api/glifs", glifs, methods=["GET"]),
            Route("/api/me", me, methods=["GET"]),
            Route("/images/{run_id}.png", image, methods=["GET"]),
            Route("/{glif_id}", run, methods=["POST"]),
        ]
    )
    app.state.glif = state or GlifState()
    return app
