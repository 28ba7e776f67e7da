"""An emulator of ViewComfy: a first-generation deployment (one URL that runs a ComfyUI
workflow), ViewComfy's workflow API (``viewcomfy_cloud``) and the storage its output links
point at (``viewcomfy_runs``), all on one server unless a test moves the bucket elsewhere.

The deployment: ``POST /`` with form fields ``params`` (JSON of ``"<node>-inputs-<name>"``
keys), ``logs`` and ``workflow_api``, urlencoded or multipart (file parts named by their key),
and the ``client_id`` / ``client_secret`` headers. ``logs=false`` answers HTTP 201 with the
prompt result JSON (outputs inline as base64, or as links in ``outputs = "link"`` mode);
``logs=true`` answers HTTP 201 ``text/event-stream``: ``log_message`` events with ComfyUI
progress bars, then one ``prompt_result``. Unknown parameter keys are refused with 422, as a
deployment would fail on them. With ``result_redirects = N`` a run is answered by N "303 See
Other" to its result URL (``/?__modal_function_call_id=..``), as Modal does every 150 s.
A ``GET /`` is answered 405 before any auth, as FastAPI does for a POST route.
Point ``[images.viewcomfy] url`` (and ``api_url``) at the server's URL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from glimpse_agent.sandbox.images.faults import (
    CutResponse,
    cut_response,
    generic_response,
)
from glimpse_agent.sandbox.images.viewcomfy_cloud import cloud_routes
from glimpse_agent.sandbox.images.viewcomfy_runs import (
    CLIENT_ID,
    CLIENT_SECRET,
    MAX_SIDE,
    ViewComfyState,
    authorized,
    bucket_routes,
    create_bucket_app,
    default_workflow,
    parse_form,
    prompt_result,
    refused,
    state_of,
    workflow_run,
)

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "MAX_SIDE",
    "RUN_FAULTS",
    "ViewComfyState",
    "create_bucket_app",
    "create_viewcomfy_app",
    "default_workflow",
    "parse_form",
]

# "cut_stream": the SSE stream ends (cleanly) before prompt_result. "cut": the connection
# drops mid-answer, after the run (half the JSON; with logs, part of the stream).
# "workflow_error": a 201 whose status is "error". "error_200": a 201 with only an error
# detail. "log_error": a non-fatal "error" event in the stream.
RUN_FAULTS = frozenset(
    {"status", "hang", "cut", "cut_stream", "workflow_error", "error_200", "log_error"}
)
CALL_ID = "__modal_function_call_id"


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def _bar(step: int, steps: int) -> str:
    percent = step * 100 // steps
    filled = percent // 10
    bar = "█" * filled + " " * (10 - filled)
    return f"{percent:3d}%|{bar}| {step}/{steps} [00:0{step % 10}<00:00,  2.00it/s]"


def _see_other(st: ViewComfyState, request: Request, call_id: str) -> Response:
    base = (st.redirect_host or str(request.base_url)).rstrip("/")
    return Response(status_code=303, headers={"Location": f"{base}/?{CALL_ID}={call_id}"})


async def infer(request: Request) -> Response:
    st = state_of(request)
    if not authorized(request, st):
        return refused()
    content_type = request.headers.get("content-type", "")
    raw = await request.body()  # before any hang: a client that gave up is gone after
    fault = st.faults.take(RUN_FAULTS)
    cut = fault is not None and fault.kind == "cut"
    response = None if cut else await generic_response(fault, st.faults, ok_status=201)
    if response is not None:
        return response
    fields, files = parse_form(content_type, raw)
    parsed = workflow_run(st, fields, files)
    if isinstance(parsed, JSONResponse):
        return parsed
    params, applied = parsed
    logs = fields.get("logs", "false").lower() == "true"
    run_no = st.next_id()
    with st._lock:
        st.runs.append(
            {
                "api": "deployment",
                "params": params,
                "logs": logs,
                "content_type": content_type,
                "files": {k: len(v) for k, v in files.items()},
                "workflow_api": bool(fields.get("workflow_api")),
            }
        )
    failed = fault is not None and fault.kind == "workflow_error"
    result = prompt_result(st, request, run_no, applied, failed=failed, link=st.outputs == "link")
    if cut and not logs:
        return cut_response(status_code=201)
    if cut:
        parts = [_sse("log_message", "got prompt")]
        parts += [_sse("log_message", _bar(step, st.steps)) for step in range(st.steps // 2)]
        return CutResponse(parts, status_code=201, media_type="text/event-stream", chunked=True)
    if not logs and st.result_redirects > 0:
        call_id = f"fc-{run_no:05d}"
        with st._lock:
            st.chains[call_id] = [st.result_redirects - 1, result]
        return _see_other(st, request, call_id)
    if not logs:
        return JSONResponse(result, status_code=201)
    return StreamingResponse(
        _stream(st, result, fault), status_code=201, media_type="text/event-stream"
    )


async def get_root(request: Request) -> Response:
    st = state_of(request)
    call_id = request.query_params.get(CALL_ID)
    if call_id is None:
        # FastAPI routes by method before any dependency runs: a GET on the POST route is
        # 405, whoever asks. (So a GET proves the URL answers, never the credentials.)
        return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
    with st._lock:
        chain = st.chains.get(call_id)
        st.result_fetches += 1
        if chain is None:
            return JSONResponse({"detail": "unknown function call"}, status_code=404)
        if chain[0] > 0:
            chain[0] -= 1
            return _see_other(st, request, call_id)
        del st.chains[call_id]
    return JSONResponse(chain[1], status_code=201)


def create_viewcomfy_app(state: ViewComfyState | None = None) -> Starlette:
    """The ViewComfy emulator; its ``ViewComfyState`` is ``app.state.viewcomfy``."""
    app = Starlette(
        routes=[
            Route("/", infer, methods=["POST"]),
            Route("/", get_root, methods=["GET"]),
            *cloud_routes(),
            *bucket_routes(),
        ]
    )
    app.state.viewcomfy = state or ViewComfyState()
    return app


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
