"""The emulated Glimpse API as a Starlette app, mounted at ``/api/v1``.

    world = GlimpseWorld(clock, seed=1)
    with LoopbackServer(create_glimpse_app(world)) as server:
        base_url = f"{server.url}/api/v1"

Around every endpoint, in this order: armed faults (see ``glimpse_faults``); the crowd catches
up to the clock; Bearer auth (401 without or with a wrong key, 403 ``agent_not_verified`` for
writes of an unverified agent); the rate limit of the endpoint's bucket (429 +
``Retry-After``); an armed content refusal; the handler; an armed cut of the answer. Every
answer carries ``X-RateLimit-Limit/-Remaining/-Reset`` (epoch seconds) for that bucket, and
errors look like ``{"error": {"code", "message", "status"}}``.
Generated and posted images are served as real PNGs at ``/api/v1/images/{name}.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from glimpse_agent.sandbox.glimpse.faults import CutOff, DropConnection, Endless, Fault
from glimpse_agent.sandbox.glimpse.limits import BucketState, iso
from glimpse_agent.sandbox.glimpse.routes import ENDPOINTS as AGENT_ENDPOINTS
from glimpse_agent.sandbox.glimpse.routes_posts import ENDPOINTS as POST_ENDPOINTS
from glimpse_agent.sandbox.glimpse.state import AgentRec, ApiError, GlimpseState
from glimpse_agent.sandbox.glimpse.views import Auth, Ctx, Endpoint, parse_body
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.images.pictures import png_for

API_ROOT = "/api/v1"
_FAULT_CODES = {
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

Handler = Callable[[Request], Awaitable[Response]]


def error_response(err: ApiError) -> JSONResponse:
    body = {"error": {"code": err.code, "message": err.message, "status": err.status, **err.extra}}
    return JSONResponse(body, status_code=err.status)


def limit_headers(state: BucketState) -> dict[str, str]:
    head = state.headline
    return {
        "X-RateLimit-Limit": str(head.window.limit),
        "X-RateLimit-Remaining": str(head.remaining),
        "X-RateLimit-Reset": str(math.ceil(head.reset.timestamp())),
    }


def rate_limited(state: BucketState, now: datetime) -> ApiError:
    """The 429 for an exhausted bucket; a daily limit also says ``limit/used/resets_at``."""
    head = state.headline
    wait = max(1, math.ceil(state.retry_after(now)))
    if head.window.daily:
        err = ApiError(
            429,
            "daily_limit_exceeded",
            f"Daily {state.bucket} limit of {head.window.limit} reached; it resets at midnight UTC",
            bucket=state.bucket,
            limit=head.window.limit,
            used=head.used,
            resets_at=iso(head.reset),
            retry_after=wait,
        )
    else:
        assert head.window.span is not None
        err = ApiError(
            429,
            "rate_limit_exceeded",
            f"You have exceeded the {state.bucket} rate limit of "
            f"{head.window.limit} per {int(head.window.span.total_seconds())}s",
            bucket=state.bucket,
            limit=head.window.limit,
            used=head.used,
            retry_after=wait,
        )
    return err


def authenticate(state: GlimpseState, headers: Mapping[str, str], auth: Auth) -> AgentRec | None:
    """The calling agent. A key that is sent must be valid even where none is needed."""
    raw = headers.get("authorization")
    if raw is None:
        if auth != "none":
            raise ApiError(
                401, "missing_api_key", "This endpoint needs Authorization: Bearer glm_..."
            )
        return None
    scheme, _, token = raw.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_authorization", "Use Authorization: Bearer glm_...")
    agent_id = state.by_key.get(token.strip())
    if agent_id is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid")
    me = state.agents[agent_id]
    if auth == "verified" and not me.verified:
        raise ApiError(
            403,
            "agent_not_verified",
            "The owner's e-mail is not verified yet: POST /api/v1/agents/verify "
            "with the 6-digit code first",
        )
    return me


def _api_base(request: Request) -> str:
    path = request.url.path
    root = path[: path.find(API_ROOT) + len(API_ROOT)] if API_ROOT in path else API_ROOT
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def _serve(world: GlimpseWorld, endpoint: Endpoint) -> Handler:
    async def handle(request: Request) -> Response:
        # The body is read first: a hung request has fully arrived, as when a real server is
        # slow to process it, so the write still happens after the client has given up.
        raw = await request.body()
        fault = world.faults.take(request.method, request.url.path)
        if fault is not None and fault.kind == "hang":
            await world.faults.wait(fault.seconds)
        elif fault is not None and fault.kind == "slow_apply":
            await world.faults.wait_on_loop(fault.seconds)
        elif fault is not None and fault.kind == "endless":
            return Endless(world.faults, fault.seconds)
        elif fault is not None and fault.kind == "answer":
            return _canned(fault.status, fault.body, fault.headers)
        elif fault is not None and fault.kind == "garbage":
            return Response(
                "<html><body>502 Bad Gateway</body></html>", 200, media_type="text/html"
            )
        elif fault is not None and fault.kind == "status":
            code = _FAULT_CODES.get(fault.status, "server_error")
            return error_response(ApiError(fault.status, code, "Emulated server failure"))
        refusal = fault if fault is not None and fault.kind == "refuse" else None
        with world.lock:
            response = _answer(world, endpoint, request, raw, refusal)
        if fault is not None and fault.kind == "drop":
            return DropConnection()
        if fault is not None and fault.kind == "mutate" and fault.rewrite is not None:
            body = fault.rewrite(json.loads(bytes(response.body)))
            return _canned(response.status_code, body, {**response.headers, **fault.headers})
        return CutOff(response) if fault is not None and fault.kind == "cut" else response

    return handle


def _canned(status: int, body: object, headers: Mapping[str, str]) -> Response:
    """An answer as given: bytes as they are, anything else as JSON."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    kept = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-type")}
    media = "application/json" if "content-type" not in {k.lower() for k in headers} else None
    response = Response(raw, status, headers=kept, media_type=media)
    for k, v in headers.items():
        if k.lower() == "content-type":
            response.headers["content-type"] = v
    return response


def _answer(
    world: GlimpseWorld,
    endpoint: Endpoint,
    request: Request,
    raw: bytes,
    refusal: Fault | None = None,
) -> Response:
    """Everything after the body has arrived; runs under the world's lock. An armed
    ``refusal`` answers in place of the handler."""
    state, now = world.state, world.clock.now()
    world.population.run_until(state, now)
    ip = request.client.host if request.client else "unknown"
    who = f"ip:{ip}"  # the caller, for limits: the agent once known; registration is per IP
    bucket, route = endpoint.bucket, f"{endpoint.method} {endpoint.path}"
    try:
        try:
            me = authenticate(state, request.headers, endpoint.auth)
        except ApiError:
            world.note_request(who, route)
            raise
        world.note_request(me.id if me is not None else who, route)
        if me is not None and bucket != "registration":
            who = me.id
        world.note_bucket_request(who, bucket, now)
        limits = world.limiter.state(who, bucket, now)
        if endpoint.counts and limits.blocking:
            world.note_rate_limited(who, bucket)
            err = rate_limited(limits, now)
            world.note_retry_after(who, bucket, now, float(err.extra.get("retry_after", 1)))
            raise err
        body, files = parse_body(raw, request.headers.get("content-type", ""))
        if refusal is not None:
            if refusal.counted and endpoint.counts:
                world.limiter.record(who, bucket, now)
            raise ApiError(refusal.status, refusal.code, refusal.message)
        api_base = _api_base(request)
        ctx = Ctx(
            state=state,
            limiter=world.limiter,
            now=now,
            method=request.method,
            url=request.url,
            path_params=request.path_params,
            query=request.query_params,
            headers=request.headers,
            body=body,
            files=files,
            me=me,
            api_base=api_base,
            image_base=world.base_url_for_images or api_base,
        )
        reply = endpoint.handler(ctx)
        if bucket == "read" or (endpoint.counts and 200 <= reply.status < 300):
            world.limiter.record(who, bucket, now)
        response: Response = JSONResponse(reply.body, reply.status, headers=reply.headers)
    except ApiError as err:
        if err.status == 409 and err.code.startswith("already_"):
            world.note_repeat(who, err.code)
        response = error_response(err)
        if err.status == 429:
            response.headers["Retry-After"] = str(err.extra.get("retry_after", 1))
    response.headers.update(limit_headers(world.limiter.state(who, bucket, now)))
    return response


async def _image(request: Request) -> Response:
    name = request.path_params["name"]
    if not name.endswith(".png"):
        return error_response(ApiError(404, "not_found", "No such image"))
    try:
        size = int(request.query_params.get("size", "512"))
    except ValueError:
        size = 512
    size = min(1024, max(16, size))
    return Response(
        png_for(name.removesuffix(".png"), size, size),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


async def _not_found(request: Request) -> Response:
    return error_response(
        ApiError(404, "not_found", f"No endpoint {request.method} {request.url.path}")
    )


def create_glimpse_app(world: GlimpseWorld) -> Starlette:
    """The emulated Glimpse over ``world``, with the API under ``/api/v1``."""
    routes: list[BaseRoute] = [Route("/images/{name}", _image, methods=["GET"])]
    for endpoint in AGENT_ENDPOINTS + POST_ENDPOINTS:
        routes.append(Route(endpoint.path, _serve(world, endpoint), methods=[endpoint.method]))
    routes.append(
        Route("/{rest:path}", _not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    )
    return Starlette(routes=[Mount(API_ROOT, routes=routes)])
