"""Keys never leak: with debug logging on, a Glimpse key and provider keys (one of them in a
shape the redaction net does not know) go through every client path, failures included, and
appear in no log line, no exception message or traceback, and no repr of client or models."""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from glimpse_agent.errors import (
    BadResponse,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.logs import configure_logging
from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox
from glimpse_agent.sandbox.images.pictures import png_for

MARK = "CANARY"
GLM = "glm_CANARYglimpse0123456789abcdef"
WRONG_GLM = "glm_CANARYwrongkey000000000000"
HF = "hf_CANARYhuggingface0123456789"
# Replicate keys look like r8_…: a shape redaction.py does not know, so only the client's own
# care keeps it out of the output.
R8 = "r8_CANARYreplicate0123456789abc"
R8_REFUSED = "r8_CANARYinvalid0000000000000"
R8_ILLEGAL = "r8_CANARY\nX-Injected: header"
R8_NON_ASCII = "r8_CANARY\u2026pasted"


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    root = logging.getLogger()
    handlers = list(root.handlers)
    configure_logging(level="debug", json=True, stream=buf)
    yield buf
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    structlog.reset_defaults()


async def _echo(request: Request) -> JSONResponse:
    """A careless server that quotes the request's credentials back in its error."""
    quoted = f"{request.headers.get('authorization')} / {request.headers.get('x-image-key')}"
    return JSONResponse(
        {"error": {"code": "bad_request", "message": f"bad: {quoted}", "status": 400}}, 400
    )


@pytest.fixture
def echo_server(serve: Callable[[Any], str]) -> str:
    return serve(Starlette(routes=[Route("/{path:path}", _echo, methods=["GET", "POST", "PUT"])]))


def _assert_clean(text: str, what: str) -> None:
    assert MARK not in text, f"a key leaked into {what}: {text!r}"


async def test_keys_never_reach_logs_errors_or_reprs(
    log_buffer: io.StringIO, glimpse: GlimpseSandbox, echo_server: str
) -> None:
    """Every path of the client, success and failure, keeps all the canary keys secret."""
    glimpse.world.create_agent("canary_agent", api_key=GLM)
    errors: list[ServiceError] = []
    shown: list[object] = []

    async def expect(kind: type[ServiceError], call: object) -> None:
        with pytest.raises(kind) as info:
            await call  # type: ignore[misc]
        errors.append(info.value)

    async with glimpse.client(GLM, timeout=0.3) as client:
        shown += [client, await client.me()]
        shown.append(await client.put_image_settings("huggingface", HF))
        shown.append(await client.get_image_settings())
        shown.append(await client.generate_image("fox"))
        shown.append(await client.generate_image("fox", provider="replicate", provider_key=R8))
        await expect(
            Rejected, client.generate_image("fox", provider="replicate", provider_key=R8_REFUSED)
        )
        for bad in (R8_ILLEGAL, R8_NON_ASCII):  # cannot be sent: a Rejected, not a crash
            await expect(
                Rejected, client.generate_image("fox", provider="replicate", provider_key=bad)
            )
        shown.append(await client.create_post(caption="hi", image_bytes=png_for("x")))
        await expect(Rejected, client.like("no-such-post"))
        glimpse.world.faults.fail(503)
        await expect(Unavailable, client.heartbeat())
        glimpse.world.faults.garbage()
        await expect(BadResponse, client.me())
        glimpse.world.faults.hang(1.0)
        await expect(Unavailable, client.me())
        glimpse.world.faults.release()
        for _ in range(8):  # settings: 10 a minute, 2 spent above
            await client.get_image_settings()
        await expect(RateLimited, client.put_image_settings("huggingface", HF))
        shown += list(client.rate_limits.values())
    async with glimpse.client(WRONG_GLM) as wrong:
        await expect(Unauthorized, wrong.me())
    async with GlimpseClient("http://127.0.0.1:9/api/v1", GLM) as unreachable:
        await expect(Unavailable, unreachable.me())
    async with GlimpseClient(echo_server, GLM) as echoing:
        await expect(Rejected, echoing.generate_image("x", provider="replicate", provider_key=R8))
        await expect(Rejected, echoing.put_image_settings("replicate", R8))
    async with glimpse.client() as anonymous:
        registration = await anonymous.register("fresh_agent", "o@x.io")
        assert registration.api_key not in repr(registration) + str(registration)
        assert registration.api_key not in repr(anonymous)

    log_text = log_buffer.getvalue()
    assert "glimpse.request" in log_text and '"status": 503' in log_text  # logging did run
    _assert_clean(log_text, "the log")
    for exc in errors:
        _assert_clean(str(exc) + repr(exc), f"{type(exc).__name__}")
        _assert_clean("".join(traceback.format_exception(exc)), "a traceback")
    for thing in shown:
        _assert_clean(repr(thing) + str(thing), f"repr of {type(thing).__name__}")


def test_scrub_masks_escaped_forms_of_a_secret() -> None:
    """A secret quoted by a library in escaped form (repr of bytes) is masked too."""
    from glimpse_agent.redaction import scrub

    message = f"Illegal header value {R8_ILLEGAL.encode()!r} ({R8_ILLEGAL!r})"
    assert MARK not in scrub(message, [R8_ILLEGAL])
