"""What the ViewComfy emulator's two API generations share: the state a test arms and reads,
the workflow and its flat parameters, the prompt results, and the storage "bucket" that
serves output files by link.

Output links are presigned-looking URLs (``/bucket/<file>?X-Amz-Expires=..&X-Amz-Signature=..``)
on the emulator's own host or, with ``bucket_url`` set, on a second server (another host, as
S3 is). The bucket refuses a request that carries the ViewComfy credentials (or any
``Authorization``), as S3 refuses a presigned URL sent with a second auth mechanism, and a
wrong signature.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse_agent.imaging.backends.viewcomfy_params import is_label, split_key
from glimpse_agent.sandbox.images.faults import Faults
from glimpse_agent.sandbox.images.pictures import png_for
from glimpse_agent.sandbox.multipart import parse_multipart

CLIENT_ID = "vc-client-id-0001"
CLIENT_SECRET = "vc-client-secret-0001"
MAX_SIDE = 1024  # the emulator draws at most this size, whatever the workflow asks
_SIGNING_KEY = b"emulated-bucket-signing-key"
CREDENTIAL_HEADERS = ("client_id", "client_secret", "authorization")


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
class Job:
    """A run submitted through the workflow API; it finishes after ``polls_left`` polls."""

    prompt_id: str
    result: dict[str, Any]
    workflow: dict[str, Any]
    polls_left: int
    created_at: str
    cancelled: bool = False


@dataclass
class ViewComfyState:
    """What the service knows and saw. Tests read ``runs`` and arm ``faults`` and the modes:

    - ``outputs``: "inline" (base64 ``data``) or "link" (``filepath``) on the deployment;
      the workflow API always answers links, as the official client expects;
    - ``bucket_url``: where links point (default: this server's ``/bucket``);
    - ``result_redirects``: a deployment run is answered with this many "303 See Other" to
      its result URL before the result (Modal's long-run chain); ``redirect_host`` puts the
      result URL on another host;
    - ``poll_steps``: how many polls a workflow-API run takes to finish.
    """

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    workflow: dict[str, Any] = field(default_factory=default_workflow)
    steps: int = 20
    faults: Faults = field(default_factory=Faults)
    outputs: Literal["inline", "link"] = "inline"
    bucket_url: str | None = None
    result_redirects: int = 0
    redirect_host: str | None = None
    poll_steps: int = 2
    runs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    bucket_requests: list[dict[str, Any]] = field(default_factory=list)
    chains: dict[str, list[Any]] = field(default_factory=dict)
    result_fetches: int = 0
    jobs: dict[str, Job] = field(default_factory=dict)
    polls: int = 0
    cancelled: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)


def state_of(request: Request) -> ViewComfyState:
    state: ViewComfyState = request.app.state.viewcomfy
    return state


def authorized(request: Request, st: ViewComfyState) -> bool:
    return (
        request.headers.get("client_id") == st.client_id
        and request.headers.get("client_secret") == st.client_secret
    )


def refused() -> JSONResponse:
    return JSONResponse({"detail": "Invalid client_id or client_secret"}, status_code=401)


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Fields and file parts of a urlencoded or multipart body (stdlib only)."""
    if content_type.startswith("multipart/form-data"):
        return parse_multipart(content_type, body)
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), {}


def apply_params(
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


def workflow_run(
    st: ViewComfyState, fields: dict[str, str], files: dict[str, bytes]
) -> tuple[dict[str, Any], dict[str, Any]] | JSONResponse:
    """``(params, applied workflow)`` of a submitted form, or the 422 a deployment gives."""
    try:
        params = json.loads(fields.get("params", ""))
    except ValueError:
        return JSONResponse({"detail": "params must be a JSON object"}, status_code=422)
    if not isinstance(params, dict) or not params:
        return JSONResponse({"detail": "params must be a non-empty JSON object"}, status_code=422)
    override = fields.get("workflow_api", "")
    try:
        workflow = json.loads(override) if override else st.workflow
    except ValueError:
        return JSONResponse({"detail": "workflow_api is not JSON"}, status_code=422)
    applied = apply_params(workflow, params, files)
    if isinstance(applied, str):
        return JSONResponse({"detail": applied}, status_code=422)
    return params, applied


def _signature(name: str) -> str:
    return hmac.new(_SIGNING_KEY, name.encode(), hashlib.sha256).hexdigest()


def link_for(st: ViewComfyState, request: Request, name: str) -> str:
    base = (st.bucket_url or str(request.base_url)).rstrip("/")
    return f"{base}/bucket/{name}?X-Amz-Expires=3600&X-Amz-Signature={_signature(name)}"


def prompt_result(
    st: ViewComfyState,
    request: Request,
    run_no: int,
    workflow: dict[str, Any],
    *,
    failed: bool,
    link: bool,
) -> dict[str, Any]:
    """A deployment's prompt result (snake_case): the PNG inline, or stored and linked."""
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
        name = f"ComfyUI_{run_no:05d}_.png"
        output: dict[str, Any] = {"filename": name, "content_type": "image/png"}
        if link:
            with st._lock:
                st.files[name] = png
            output["filepath"] = link_for(st, request, name)
        else:
            output["data"] = base64.b64encode(png).decode("ascii")
        output["size"] = len(png)
        outputs.append(output)
    return {
        "prompt_id": f"prompt-{run_no:05d}",
        "status": "error" if failed else "success",
        "completed": True,
        "execution_time_seconds": 1.5,
        "prompt": workflow,
        "outputs": outputs,
    }


async def bucket_file(request: Request) -> Response:
    """``GET /bucket/{name}``: an output file, for a correctly signed URL without credentials."""
    st = state_of(request)
    name = request.path_params["name"]
    carried = sorted(h for h in CREDENTIAL_HEADERS if h in request.headers)
    with st._lock:
        st.bucket_requests.append({"name": name, "credential_headers": carried})
    if carried:
        return JSONResponse(
            {"Code": "InvalidArgument", "Message": "Only one auth mechanism allowed"},
            status_code=400,
        )
    if not hmac.compare_digest(request.query_params.get("X-Amz-Signature", ""), _signature(name)):
        return JSONResponse({"Code": "SignatureDoesNotMatch"}, status_code=403)
    data = st.files.get(name)
    if data is None:
        return JSONResponse({"Code": "NoSuchKey"}, status_code=404)
    return Response(data, media_type="image/png")


def bucket_routes() -> list[Route]:
    return [Route("/bucket/{name}", bucket_file, methods=["GET"])]


def create_bucket_app(state: ViewComfyState) -> Starlette:
    """The storage host on its own: serve it on a second port and set ``bucket_url`` to it."""
    app = Starlette(routes=bucket_routes())
    app.state.viewcomfy = state
    return app
