"""An emulator of a first-generation ViewComfy deployment: one URL that runs a ComfyUI
workflow. ``POST /`` with form fields ``params`` (JSON of ``"<node>-inputs-<name>"`` keys),
``logs`` and ``workflow_api``, urlencoded or multipart (file parts named by their key), and the
``client_id`` / ``client_secret`` headers.

``logs=false`` answers HTTP 201 with the prompt result JSON (outputs as base64 PNG);
``logs=true`` answers HTTP 201 ``text/event-stream``: ``log_message`` events with ComfyUI
progress bars, then one ``prompt_result``. Unknown parameter keys are refused with 422, as a
deployment would fail on them. Point ``[images.viewcomfy] url`` at the server's URL.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from glimpse_agent.imaging.backends.viewcomfy_params import is_label, split_key
from glimpse_agent.sandbox.images.faults import (
    CutResponse,
    Faults,
    cut_response,
    generic_response,
)
from glimpse_agent.sandbox.images.pictures import png_for
from glimpse_agent.sandbox.multipart import parse_multipart

CLIENT_ID = "vc-client-id-0001"
CLIENT_SECRET = "vc-client-secret-0001"
MAX_SIDE = 1024  # the emulator draws at most this size, whatever the workflow asks
# "cut_stream": the SSE stream ends (cleanly) before prompt_result. "cut": the connection
# drops mid-answer, after the run (half the JSON; with logs, part of the stream).
# "workflow_error": a 201 whose status is "error". "error_200": a 201 with only an error
# detail. "log_error": a non-fatal "error" event in the stream.
RUN_FAULTS = frozenset(
    {"status", "hang", "cut", "cut_stream", "workflow_error", "error_200", "log_error"}
)


def default_workflow() -> dict[str, Any]:
    """A small text-to-image workflow_api.json (FLUX schnell)."""
    return {
        "3": {
            "class_type": "KSampler",
            "_meta": {"title": "KSampler"},
            "inputs": {
                "seed": 42,
                "steps": 4,
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "simple",
                "denoise": 1.0,
                "model": ["12", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "5": {
            "class_type": "EmptyLatentImage",
            "_meta": {"title": "Empty Latent Image"},
            "inputs": {"width": 512, "height": 512, "batch_size": 1},
        },
        "6": {
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Prompt)"},
            "inputs": {"text": "a lighthouse at dawn", "clip": ["11", 0]},
        },
        "7": {
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "Negative"},
            "inputs": {"text": "", "clip": ["11", 0]},
        },
        "11": {
            "class_type": "DualCLIPLoader",
            "inputs": {
                "clip_name1": "t5xxl_fp8.safetensors",
                "clip_name2": "clip_l.safetensors",
                "type": "flux",
            },
        },
        "12": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "flux1-schnell.safetensors", "weight_dtype": "default"},
        },
        "52": {
            "class_type": "LoadImage",
            "_meta": {"title": "Load Image"},
            "inputs": {"image": "example.png"},
        },
    }


@dataclass
class ViewComfyState:
    """What the deployment knows and saw. Tests read ``runs`` and arm ``faults``."""

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    workflow: dict[str, Any] = field(default_factory=default_workflow)
    steps: int = 20
    faults: Faults = field(default_factory=Faults)
    runs: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)


def _state(request: Request) -> ViewComfyState:
    state: ViewComfyState = request.app.state.viewcomfy
    return state


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Fields and file parts of a urlencoded or multipart body (stdlib only)."""
    if content_type.startswith("multipart/form-data"):
        return parse_multipart(content_type, body)
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), {}


def _apply(
    workflow: dict[str, Any], params: dict[str, Any], files: dict[str, bytes]
) -> dict[str, Any] | str:
    """The workflow with ``params`` set, or the reason a deployment would refuse them."""
    applied = copy.deepcopy(workflow)
    for key, value in [*params.items(), *((k, f"upload:{len(v)}") for k, v in files.items())]:
        if is_label(key):
            return f"{key} is a label, not a parameter: do not send it"
        try:
            node, name = split_key(key)
        except ValueError as exc:
            return str(exc)
        inputs = applied.get(node, {}).get("inputs")
        if not isinstance(inputs, dict) or name not in inputs:
            return f"unknown parameter {key}: node {node} has no input {name!r}"
        inputs[name] = value
    return applied


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def _bar(step: int, steps: int) -> str:
    percent = step * 100 // steps
    filled = percent // 10
    bar = "█" * filled + " " * (10 - filled)
    return f"{percent:3d}%|{bar}| {step}/{steps} [00:0{step % 10}<00:00,  2.00it/s]"


def create_viewcomfy_app(state: ViewComfyState | None = None) -> Starlette:
    """The ViewComfy emulator; its ``ViewComfyState`` is ``app.state.viewcomfy``."""

    def authorized(request: Request, st: ViewComfyState) -> bool:
        return (
            request.headers.get("client_id") == st.client_id
            and request.headers.get("client_secret") == st.client_secret
        )

    async def infer(request: Request) -> Response:
        st = _state(request)
        if not authorized(request, st):
            return JSONResponse({"detail": "Invalid client_id or client_secret"}, status_code=401)
        content_type = request.headers.get("content-type", "")
        raw = await request.body()  # before any hang: a client that gave up is gone after
        fault = st.faults.take(RUN_FAULTS)
        cut = fault is not None and fault.kind == "cut"
        response = None if cut else await generic_response(fault, st.faults, ok_status=201)
        if response is not None:
            return response
        fields, files = parse_form(content_type, raw)
        try:
            params = json.loads(fields.get("params", ""))
        except ValueError:
            return JSONResponse({"detail": "params must be a JSON object"}, status_code=422)
        if not isinstance(params, dict) or not params:
            return JSONResponse(
                {"detail": "params must be a non-empty JSON object"}, status_code=422
            )
        override = fields.get("workflow_api", "")
        try:
            workflow = json.loads(override) if override else st.workflow
        except ValueError:
            return JSONResponse({"detail": "workflow_api is not JSON"}, status_code=422)
        applied = _apply(workflow, params, files)
        if isinstance(applied, str):
            return JSONResponse({"detail": applied}, status_code=422)
        logs = fields.get("logs", "false").lower() == "true"
        with st._lock:
            run_no = next(st._ids)
            st.runs.append(
                {
                    "params": params,
                    "logs": logs,
                    "content_type": content_type,
                    "files": {k: len(v) for k, v in files.items()},
                    "workflow_api": bool(override),
                }
            )
        result = _result(
            run_no, applied, failed=fault is not None and fault.kind == "workflow_error"
        )
        if cut and not logs:
            return cut_response(status_code=201)
        if cut:
            parts = [_sse("log_message", "got prompt")]
            parts += [_sse("log_message", _bar(step, st.steps)) for step in range(st.steps // 2)]
            return CutResponse(parts, status_code=201, media_type="text/event-stream", chunked=True)
        if not logs:
            return JSONResponse(result, status_code=201)
        return StreamingResponse(
            _stream(st, result, fault), status_code=201, media_type="text/event-stream"
        )

    async def probe(request: Request) -> Response:
        # What a FastAPI deployment says to a GET on a POST-only URL (after our auth check).
        if not authorized(request, _state(request)):
            return JSONResponse({"detail": "Invalid client_id or client_secret"}, status_code=401)
        return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)

    app = Starlette(
        routes=[Route("/", infer, methods=["POST"]), Route("/", probe, methods=["GET"])]
    )
    app.state.viewcomfy = state or ViewComfyState()
    return app


def _result(run_no: int, workflow: dict[str, Any], *, failed: bool) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = []
    if not failed:
        latent: dict[str, Any] = next(
            (
                n["inputs"]
                for n in workflow.values()
                if isinstance(n, dict) and n.get("class_type") == "EmptyLatentImage"
            ),
            {},
        )
        width = min(MAX_SIDE, int(latent.get("width", 512)))
        height = min(MAX_SIDE, int(latent.get("height", 512)))
        png = png_for(json.dumps(workflow, sort_keys=True), width, height)
        outputs.append(
            {
                "filename": f"ComfyUI_{run_no:05d}_.png",
                "content_type": "image/png",
                "data": base64.b64encode(png).decode("ascii"),
                "size": len(png),
            }
        )
    return {
        "prompt_id": f"prompt-{run_no:05d}",
        "status": "error" if failed else "success",
        "completed": True,
        "execution_time_seconds": 1.5,
        "prompt": workflow,
        "outputs": outputs,
    }


async def _stream(st: ViewComfyState, result: dict[str, Any], fault: Any) -> AsyncIterator[bytes]:
    yield _sse("log_message", "got prompt")
    for step in range(st.steps + 1):
        if fault is not None and fault.kind == "log_error" and step == st.steps // 2:
            yield _sse("error", "Warning: VAE decode fell back to tiled mode")
        yield _sse("log_message", _bar(step, st.steps))
    if fault is not None and fault.kind == "cut_stream":
        return
    yield _sse("log_message", f"Prompt executed in {result['execution_time_seconds']} seconds")
    yield _sse("prompt_result", json.dumps(result))
