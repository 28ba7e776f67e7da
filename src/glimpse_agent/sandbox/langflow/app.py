"""A Langflow 1.13 emulator: the run API a caption client meets, quirks included.

    state = LangflowState(api_key="lf-key")
    flow = state.add_flow(endpoint_name="caption")   # its Prompt uses {voice} {topic} {hashtags}
    with LoopbackServer(create_langflow_app(state)) as server:
        ...                                          # state.runs records every request

What it enforces: flows by UUID or endpoint name (404 ``Flow identifier X not found``);
``x-api-key`` auth on self-hosted paths (Bearer alone is 403; with auth off, any key given is
still checked and refused); ``/lf/{id}`` hosted paths that want ``Authorization: Bearer``;
``output_type`` filtering (``chat`` keeps Chat Output components only); the silent drop of a
body holding one invalid enum value; 400 for ``input_value`` both in the body and in a Chat Input
tweak; 422 for malformed JSON (a list ``detail``) and protected tweaks (an object ``detail``);
500 with a JSON-string ``detail``; 503 + ``Retry-After`` while "its auth backend is down";
both response shapes; the not-SSE streaming framing with or without token events, error events
(twice, no ``end``) and a cut stream; file upload (by UUID only: 422 otherwise); the flow list
``GET /api/v1/flows/`` (a list, or a page with ``?page=&size=`` or ``paginate``); ``/health``;
switchable failures of the list and of uploads; a switchable delay.

A flow echoes its rendered Prompt template, unless it has a ``model``: then the model writes the
text from the Prompt's variables (the sandbox's is ``langflow_model.plausible_caption``).

Its answers carry every key of the answers Langflow's own client recorded from a real server
(tests/test_langflow_contract.py).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from glimpse_agent.sandbox.langflow.state import (
    GRAPH_ERROR,
    INPUT_TYPES,
    OUTPUT_TYPES,
    PROTECTED,
    UUID_PATTERN,
    EmulatedFlow,
    LangflowState,
    RecordedRun,
    render,
)

__all__ = [
    "EmulatedFlow",
    "LangflowState",
    "RecordedRun",
    "create_langflow_app",
    "langflow_routes",
    "render",
]


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _invalid(kind: str, loc: list[Any], msg: str, **extra: Any) -> JSONResponse:
    """FastAPI's 422: ``detail`` is a list of validation errors."""
    return _error(422, [{"type": kind, "loc": loc, "msg": msg, **extra}])


# --------------------------------------------------------------------------- result bodies


_MACHINE = {"sender": "Machine", "sender_name": "AI", "files": []}
_MESSAGE_FLAGS = {"error": False, "edit": False, "category": "message", "content_blocks": []}
# Every key of a Message a real server sent (tests/data/langflow_client.json, recorded answers).
_PROPERTIES = {
    "text_color": "",
    "background_color": "",
    "edited": False,
    "source": {"id": None, "display_name": None, "source": None},
    "icon": "",
    "allow_markdown": False,
    "positive_feedback": None,
    "state": "complete",
    "targets": [],
}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def _message(text: str, sender: str, session_id: str, flow: EmulatedFlow) -> dict[str, Any]:
    """A Message as ``add_message`` events and ``results.message`` carry it."""
    message: dict[str, Any] = {"id": str(uuid.uuid4()), "text": text, "sender": sender}
    message["sender_name"] = "AI" if sender == "Machine" else "User"
    message |= {"session_id": session_id, "flow_id": flow.id, "files": [], **_MESSAGE_FLAGS}
    message |= {"timestamp": _now(), "properties": copy.deepcopy(_PROPERTIES), "duration": None}
    return message


def result_data(
    flow: EmulatedFlow, text: str, session_id: str, shape: Literal["string", "object"]
) -> dict[str, Any]:
    """One ResultData. ``string``: current servers; ``object``: older/hosted ones, where the
    text is only reachable as ``outputs.<k>.message.text``."""
    key = "message" if flow.output == "chat" else "text"
    display = "Chat Output" if key == "message" else "Text Output"
    common: dict[str, Any] = {"logs": {key: []}, "timedelta": None, "duration": None}
    common["used_frozen_result"] = False
    common |= {"component_id": flow.output_node, "component_display_name": display}
    if shape == "object":
        message = _message(text, "Machine", session_id, flow)
        outputs = {key: {"message": message, "type": "message"}}
        return common | {"results": {}, "artifacts": {}, "messages": [], "outputs": outputs}
    if flow.output == "text":
        artifacts = {"text": {"raw": text, "repr": text, "type": "text"}}
        return common | {
            "results": {"text": {"text": text, "data": {"text": text}}},
            "outputs": {"text": {"message": text, "type": "text"}},
            "artifacts": artifacts,
            "messages": [],
        }
    message = _message(text, "Machine", session_id, flow)
    message = message | {"data": dict(message), "text_key": "text", "default_value": ""}
    listed: dict[str, Any] = {"message": text, "session_id": session_id}
    listed["component_id"] = flow.output_node
    listed["stream_url"] = None
    return common | {
        "results": {"message": message},
        "artifacts": {"message": text, "type": "object", **_MACHINE},
        "outputs": {"message": {"message": text, "type": "text"}},
        "messages": [listed | {"type": "text", **_MACHINE}],
    }


def run_body(
    flow: EmulatedFlow, text: str, applied: dict[str, Any], shape: Literal["string", "object"]
) -> dict[str, Any]:
    session_id = applied.get("session_id") or flow.id
    output_type = applied.get("output_type", "chat")
    wanted = output_type in ("any", "debug") or output_type in flow.output_node.lower()
    outputs = [result_data(flow, text, session_id, shape)] if wanted else []
    return {
        "session_id": session_id,
        "outputs": [
            {"inputs": {"input_value": applied.get("input_value") or ""}, "outputs": outputs}
        ],
    }


# --------------------------------------------------------------------------- requests


def _applied(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The request as the server runs it: one invalid field and the whole body is dropped."""
    valid = (
        body.get("input_type", "chat") in INPUT_TYPES
        and body.get("output_type", "chat") in OUTPUT_TYPES
        and isinstance(body.get("tweaks") or {}, dict)
        and isinstance(body.get("input_value") or "", str)
        and isinstance(body.get("session_id") or "", str)
    )
    if not valid:
        return {"input_type": "chat", "output_type": "chat", "tweaks": {}}, True
    return {"input_type": "chat", "output_type": "chat", "tweaks": {}, **body}, False


def _tweak_refusal(applied: dict[str, Any]) -> JSONResponse | None:
    tweaks = applied.get("tweaks") or {}
    for node, fields in tweaks.items():
        if not isinstance(fields, dict):
            continue
        for name in fields:
            if name in PROTECTED:
                return _error(
                    422,
                    {
                        "message": f"Field {name!r} of {node!r} cannot be tweaked",
                        "node": node,
                        "field": name,
                    },
                )
        chat_input = "ChatInput" in node or "Chat Input" in node
        if (
            chat_input
            and "input_value" in fields
            and applied.get("input_value") is not None
            and applied.get("input_type") == "chat"
        ):
            return _error(
                400,
                "If you pass an input_value to the chat input, you cannot pass "
                "a tweak with the same name.",
            )
    return None


def _auth(state: LangflowState, request: Request, hosted: bool) -> JSONResponse | None:
    if state.unavailable_retry_after is not None:
        return _error(
            503,
            "Authentication service is unavailable, try again later",
            {"Retry-After": f"{state.unavailable_retry_after:g}"},
        )
    if hosted:
        if request.path_params.get("lf_id") != state.hosted_id:
            return _error(404, "Not Found")
        expected = f"Bearer {state.hosted_token}"
        if request.headers.get("authorization") != expected:
            return _error(401, "Invalid or missing application token")
        return None
    key = request.headers.get("x-api-key") or request.query_params.get("x-api-key")
    if key is None and state.api_key is not None:
        return _error(403, "An API key must be passed as query or header")
    if key is not None and key != state.api_key:
        return _error(403, "Invalid or missing API key")
    return None


def _headers_seen(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k in ("x-api-key", "authorization")}


def _refusal(
    state: LangflowState, request: Request, run: RecordedRun, raw: bytes
) -> Response | None:
    """The error answer for this request, if any, in the server's order of checks (FastAPI
    parses the JSON before it runs the auth dependency). Fills ``run.body`` and ``run.applied``."""
    try:
        run.body = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        detail = {"input": {}, "ctx": {"error": exc.msg}}
        return _invalid("json_invalid", ["body", exc.pos], "JSON decode error", **detail)
    refusal = _auth(state, request, run.hosted)
    if refusal is not None:
        return refusal
    if state.find(run.flow) is None:
        return _error(404, f"Flow identifier {run.flow} not found")
    if not isinstance(run.body, dict):
        return _invalid("model_attributes_type", ["body"], "Input should be a valid dictionary")
    run.applied, run.dropped = _applied(run.body)
    return _tweak_refusal(run.applied)


async def _run(state: LangflowState, request: Request) -> Response:
    stream = request.query_params.get("stream", "false").lower() == "true"
    run = state.record(
        RecordedRun(
            request.path_params["flow"],
            "lf_id" in request.path_params,
            stream,
            _headers_seen(request),
            None,
        )
    )
    raw = await request.body()
    await state.wait()
    refusal = _refusal(state, request, run, raw)
    flow = state.find(run.flow)
    if refusal is not None or flow is None:
        run.status = refusal.status_code if refusal is not None else 404
        return refusal or _error(404, "Not Found")
    if stream:
        return StreamingResponse(_events(state, flow, run), media_type="text/event-stream")
    if flow.fail:
        run.status = 500
        return _error(
            500,
            json.dumps(
                {"message": GRAPH_ERROR, "traceback": None, "description": "component failed"}
            ),
        )
    run.text = state.answer(flow, run)
    return JSONResponse(run_body(flow, run.text, run.applied, state.message_shape))


async def _events(state: LangflowState, flow: EmulatedFlow, run: RecordedRun) -> AsyncIterator[str]:
    prefix = "data: " if state.stream_prefix else ""
    session_id = run.applied.get("session_id") or flow.id

    def event(name: str, data: Any) -> str:
        return prefix + json.dumps({"event": name, "data": data}) + "\n\n"

    yield event(
        "add_message", _message(run.applied.get("input_value") or "", "User", session_id, flow)
    )
    await asyncio.sleep(0)
    if flow.fail or state.stream_fault == "error":
        failed = _message(GRAPH_ERROR, "Machine", session_id, flow)
        yield event("error", {**failed, "error": True, "category": "error"})
        yield event("error", {"error": "500: " + json.dumps({"message": GRAPH_ERROR})})
        return
    text = run.text = state.answer(flow, run)
    if flow.tokens and flow.output == "chat":
        streaming = _message("", "Machine", session_id, flow)
        yield event("add_message", streaming)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield event(
                "token",
                {
                    "chunk": word + (" " if i < len(words) - 1 else ""),
                    "id": streaming["id"],
                    "timestamp": _now(),
                },
            )
            await asyncio.sleep(0)
            if state.stream_fault == "cut" and i >= len(words) // 2:
                return
    if state.stream_fault == "cut":
        return
    if flow.output == "chat":
        yield event("add_message", _message(text, "Machine", session_id, flow))
    yield event("end", {"result": run_body(flow, text, run.applied, state.message_shape)})


async def _upload(state: LangflowState, request: Request) -> Response:
    hosted = "lf_id" in request.path_params
    refusal = _auth(state, request, hosted)
    if refusal is not None:
        return refusal
    if state.upload_status is not None:
        return _error(state.upload_status, "Error uploading file: storage is unavailable")
    flow_id = request.path_params["flow_id"]
    if not UUID_PATTERN.match(flow_id):
        return _invalid("uuid_parsing", ["path", "flow_id"], "Input should be a valid UUID")
    flow = state.find(flow_id)
    if flow is None or flow.id != flow_id:
        return _error(404, "Flow not found")
    ctype = request.headers.get("content-type", "")
    raw = await request.body()
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
    )
    parts = message.iter_parts()
    part = next(
        (p for p in parts if p.get_param("name", header="content-disposition") == "file"), None
    )
    if part is None:
        return _invalid("missing", ["body", "file"], "Field required")
    filename = part.get_filename() or "upload"
    data = part.get_payload(decode=True)
    path = f"{flow.id}/{time.strftime('%Y-%m-%d_%H-%M-%S')}_{filename}"
    with state._lock:
        state.uploads.append(
            {
                "file_path": path,
                "filename": filename,
                "size": len(data) if isinstance(data, bytes) else 0,
                "content_type": part.get_content_type(),
            }
        )
    return JSONResponse({"flowId": flow.id, "file_path": path}, status_code=201)


def flow_header(flow: EmulatedFlow) -> dict[str, Any]:
    """A flow as the list shows it (a FlowRead, minus the graph)."""
    name = flow.name if flow.name is not None else (flow.endpoint_name or f"Flow {flow.id[:8]}")
    return {"id": flow.id, "name": name, "endpoint_name": flow.endpoint_name}


async def _list_flows(state: LangflowState, request: Request) -> Response:
    """``GET /api/v1/flows/``: the flows as a list, or as a page when asked for one."""
    query = dict(request.query_params)
    hosted = "lf_id" in request.path_params
    run = RecordedRun("", hosted, False, _headers_seen(request), query)
    with state._lock:
        state.listings.append(run)
        flows = [flow_header(f) for f in state.flows if f.listed]
    refusal = _auth(state, request, run.hosted)
    if refusal is None and state.listing_status is not None:
        reason = {403: "Forbidden", 404: "Not Found"}.get(state.listing_status, "Server error")
        refusal = _error(state.listing_status, reason)
    if refusal is not None:
        run.status = refusal.status_code
        return refusal
    if "page" not in query and "size" not in query and state.paginate is None:
        return JSONResponse(flows)
    try:
        page, size = int(query.get("page", 1)), int(query.get("size", state.paginate or 50))
    except ValueError:
        return _invalid("int_parsing", ["query", "page"], "Input should be a valid integer")
    if page < 1 or not 1 <= size <= 100:
        return _invalid("greater_than_equal", ["query", "page"], "Input out of range")
    items = flows[(page - 1) * size : page * size]
    pages = max(1, -(-len(flows) // size))
    body = {"items": items, "total": len(flows), "page": page, "size": size, "pages": pages}
    return JSONResponse(body)


def langflow_routes(state: LangflowState) -> list[Route]:
    async def run(request: Request) -> Response:
        return await _run(state, request)

    async def upload(request: Request) -> Response:
        return await _upload(state, request)

    async def list_flows(request: Request) -> Response:
        return await _list_flows(state, request)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def version(_: Request) -> Response:
        return JSONResponse({"version": "1.13.0", "main_version": "1.13.0", "package": "Langflow"})

    return [
        Route("/health", health, methods=["GET"]),
        Route("/api/v1/version", version, methods=["GET"]),
        Route("/api/v1/run/{flow}", run, methods=["POST"]),
        Route("/lf/{lf_id}/api/v1/run/{flow}", run, methods=["POST"]),
        Route("/api/v1/flows/", list_flows, methods=["GET"]),
        Route("/lf/{lf_id}/api/v1/flows/", list_flows, methods=["GET"]),
        Route("/api/v1/files/upload/{flow_id}", upload, methods=["POST"]),
        Route("/lf/{lf_id}/api/v1/files/upload/{flow_id}", upload, methods=["POST"]),
    ]


def create_langflow_app(state: LangflowState) -> Starlette:
    return Starlette(routes=langflow_routes(state))
