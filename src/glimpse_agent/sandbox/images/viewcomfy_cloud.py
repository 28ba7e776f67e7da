"""ViewComfy's workflow API, emulated (the generation of ``ViewComfy/cloud-public`` since
August 2025): ``POST /api/workflow/infer`` (form: ``prompt_id``, ``view_comfy_api_url``,
``params``, ``workflow_api``, file parts) answered 201 ``{"data": {prompt_id, message,
workflow}}``; ``GET /api/workflow/infer/?prompt_ids=..`` answered 200 with camelCase records;
``POST /api/workflow/infer/cancel``. A run finishes after ``poll_steps`` polls; its outputs are
links. Point ``[images.viewcomfy] api_url`` at the server's URL and set ``api = "workflow"``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse_agent.sandbox.images.faults import generic_response
from glimpse_agent.sandbox.images.viewcomfy_runs import (
    Job,
    authorized,
    parse_form,
    prompt_result,
    refused,
    state_of,
    workflow_run,
)

SUBMIT_FAULTS = frozenset({"status", "hang", "workflow_error"})


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def record_of(st_client_id: str, job: Job) -> dict[str, Any]:
    """The camelCase record the poll lists for ``job``, in its current state."""
    result = job.result
    outputs: list[dict[str, Any]]
    if job.cancelled:
        status, completed, outputs, error = "cancelled", True, [], "cancelled by the client"
    elif job.polls_left > 0:
        status, completed, outputs, error = "running", False, [], None
    else:
        status, completed = result["status"], True
        outputs = result["outputs"]
        error = "CUDA error: out of memory" if status == "error" else None
    return {
        "promptId": job.prompt_id,
        "status": status,
        "completed": completed,
        "executionTimeSeconds": result["execution_time_seconds"] if completed else 0,
        "prompt": job.workflow,
        "outputs": [{_camel(k): v for k, v in o.items()} for o in outputs],
        "errorData": error,
        "createdAt": job.created_at,
        "workflow": job.workflow,
        "clientId": st_client_id,
        "user": {"id": 1, "email": "sandbox@example.invalid"},
    }


async def submit(request: Request) -> Response:
    st = state_of(request)
    if not authorized(request, st):
        return refused()
    raw = await request.body()
    fault = st.faults.take(SUBMIT_FAULTS)
    response = await generic_response(fault, st.faults, ok_status=201)
    if response is not None:
        return response
    fields, files = parse_form(request.headers.get("content-type", ""), raw)
    prompt_id = fields.get("prompt_id", "")
    target = fields.get("view_comfy_api_url", "")
    if not prompt_id or not target.startswith(("http://", "https://")):
        return JSONResponse(
            {"detail": "prompt_id and view_comfy_api_url are required"}, status_code=422
        )
    if prompt_id in st.jobs:
        return JSONResponse({"detail": f"prompt {prompt_id} already exists"}, status_code=409)
    parsed = workflow_run(st, fields, files)
    if isinstance(parsed, JSONResponse):
        return parsed
    params, applied = parsed
    run_no = st.next_id()
    failed = fault is not None and fault.kind == "workflow_error"
    result = prompt_result(st, request, run_no, applied, failed=failed, link=True)
    with st._lock:
        st.runs.append(
            {
                "api": "workflow",
                "params": params,
                "view_comfy_api_url": target,
                "content_type": request.headers.get("content-type", ""),
                "files": {k: len(v) for k, v in files.items()},
                "workflow_api": bool(fields.get("workflow_api")),
            }
        )
        st.jobs[prompt_id] = Job(
            prompt_id=prompt_id,
            result=result,
            workflow=applied,
            polls_left=st.poll_steps,
            created_at=datetime.now(UTC).isoformat(),
        )
    return JSONResponse(
        {"data": {"prompt_id": prompt_id, "message": "Prompt scheduled", "workflow": applied}},
        status_code=201,
    )


async def poll(request: Request) -> Response:
    st = state_of(request)
    if not authorized(request, st):
        return refused()
    with st._lock:
        st.polls += 1
    fault = st.faults.take(frozenset({"poll_status"}))
    if fault is not None:
        return JSONResponse({"detail": fault.message}, status_code=fault.status)
    records = []
    with st._lock:
        for prompt_id in request.query_params.getlist("prompt_ids"):
            job = st.jobs.get(prompt_id)
            if job is None:
                continue
            if job.polls_left > 0:
                job.polls_left -= 1
            records.append(record_of(st.client_id, job))
    return JSONResponse(records)


async def cancel(request: Request) -> Response:
    st = state_of(request)
    if not authorized(request, st):
        return refused()
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"detail": "body is not JSON"}, status_code=422)
    prompt_id = body.get("prompt_id") or body.get("promptId") if isinstance(body, dict) else None
    with st._lock:
        job = st.jobs.get(str(prompt_id))
        if job is None:
            return JSONResponse({"detail": f"unknown prompt {prompt_id}"}, status_code=404)
        job.cancelled = True
        st.cancelled.append(job.prompt_id)
    return JSONResponse({"data": {"prompt_id": job.prompt_id, "canceled": True}}, status_code=201)


def cloud_routes() -> list[Route]:
    return [
        Route("/api/workflow/infer", submit, methods=["POST"]),
        Route("/api/workflow/infer/", poll, methods=["GET"]),
        Route("/api/workflow/infer/cancel", cancel, methods=["POST"]),
    ]
