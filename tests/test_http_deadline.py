"""Every request ends within its deadline, the whole of it: an answer whose body trickles in
forever (each chunk well inside ``httpx``'s read timeout) ends in ``NoAnswer``, whether the
boundary reads it (``safe.send``), the caller reads it streamed (ViewComfy's log stream, an
image download for Langflow), or Glimpse's client sends it. Real HTTP on loopback: a server
that never finishes is exactly what the emulators cannot be told to do here.

``HANG_GUARD`` only keeps a broken build from hanging the suite; how fast a deadline fires is
for ``bench/``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests.conftest import Serve

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import LangflowSection, ViewComfySection
from glimpse_agent.errors import NoAnswer
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.http import safe
from glimpse_agent.imaging.backends.viewcomfy import ViewComfyBackend
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.langflow.app import LangflowState
from glimpse_agent.writing import CaptionRequest, LangflowCaptioner

LF_KEY = "lf-selfhosted-key-8841"
FLOW_ID = "3f1c0e8a-5b7d-4c2e-9a61-0d2b8e4f7a90"
HANG_GUARD = 60.0  # far past every deadline below: only a request with none reaches it


async def _drip(piece: bytes, every: float = 0.05) -> AsyncIterator[bytes]:
    while True:
        yield piece
        await asyncio.sleep(every)


async def trickle(request: Request) -> Response:
    """A JSON answer that starts and never ends: a byte every 50 ms."""
    return StreamingResponse(_drip(b" "), media_type="application/json")


async def sse_forever(request: Request) -> Response:
    """ViewComfy's log stream, progressing forever, never sending its prompt_result."""
    event = b"event: log_message\ndata: 10%|#         | 1/10 [00:01<00:09]\n\n"
    return StreamingResponse(_drip(event), status_code=201, media_type="text/event-stream")


async def slow_headers(request: Request) -> Response:
    await asyncio.sleep(HANG_GUARD)
    return JSONResponse({})


async def image_forever(request: Request) -> Response:
    return StreamingResponse(_drip(b"\x89PNG" * 64), media_type="image/png")


APP = Starlette(
    routes=[
        Route("/trickle", trickle),
        Route("/api/v1/agents/me", trickle),
        Route("/sse", sse_forever, methods=["POST"]),
        Route("/slow", slow_headers),
        Route("/image.png", image_forever),
    ]
)


@pytest.fixture(scope="module")
def url(serve_module: Serve) -> str:
    return serve_module(APP)


@pytest.fixture
def state() -> LangflowState:
    """The Langflow emulator's state (served by conftest's ``base_url``): one caption flow."""
    state = LangflowState(api_key=LF_KEY)
    state.add_flow(flow_id=FLOW_ID, endpoint_name="caption")
    return state


def test_deadline_is_a_multiple_of_the_longest_timeout() -> None:
    assert safe.deadline_for(30.0) == 60.0
    assert safe.deadline_for(httpx.Timeout(5.0, connect=30.0)) == 60.0
    assert safe.deadline_for(httpx.Timeout(None)) == safe.DEFAULT_DEADLINE
    assert safe.deadline_for(None) == safe.DEFAULT_DEADLINE


async def test_a_body_that_never_ends_is_no_answer(url: str) -> None:
    """Each chunk comes well inside the 1 s read timeout; the 2 s deadline still ends it."""
    async with httpx.AsyncClient(timeout=1.0) as http:
        async with asyncio.timeout(HANG_GUARD):
            with pytest.raises(NoAnswer) as info:
                await safe.send(http, "GET", url + "/trickle", service="svc", where="GET /x")
    assert "GET /x" in str(info.value) and "deadline" in str(info.value)


async def test_a_streamed_body_read_by_the_caller_ends_at_the_same_deadline(url: str) -> None:
    async with httpx.AsyncClient(timeout=5.0) as http:
        async with asyncio.timeout(HANG_GUARD):
            response = await safe.send(
                http, "GET", url + "/trickle", service="svc", stream=True, deadline=1.0
            )
            try:
                with pytest.raises(NoAnswer):
                    async for _ in response.aiter_bytes():
                        pass
            finally:
                await response.aclose()
    assert response.is_closed


async def test_an_explicit_deadline_ends_a_request_before_its_read_timeout(url: str) -> None:
    """Headers that never come, under a 60 s read timeout: the 0.5 s deadline wins."""
    async with httpx.AsyncClient(timeout=HANG_GUARD) as http:
        async with asyncio.timeout(HANG_GUARD / 2):
            with pytest.raises(NoAnswer):
                await safe.send(http, "GET", url + "/slow", service="svc", deadline=0.5)


async def test_an_outer_timeout_stays_the_callers(url: str) -> None:
    """A caller's own, shorter asyncio.timeout is not turned into our NoAnswer."""
    async with httpx.AsyncClient(timeout=HANG_GUARD) as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await safe.send(http, "GET", url + "/slow", service="svc", deadline=HANG_GUARD)


async def test_glimpse_request_that_never_ends_is_no_answer(url: str) -> None:
    async with GlimpseClient(url + "/api/v1", "glm_test_key_123456", timeout=0.5) as client:
        assert client.request_deadline == 1.0
        async with asyncio.timeout(HANG_GUARD):
            with pytest.raises(NoAnswer) as info:
                await client.me()
    assert "GET /agents/me" in str(info.value)
    assert "glm_test_key" not in str(info.value)


async def test_viewcomfy_log_stream_that_never_finishes_ends_in_its_deadline(
    url: str, clock: SimulatedClock
) -> None:
    section = ViewComfySection.model_validate(
        {
            "url": url + "/sse",
            "client_id": "vc-id",
            "client_secret": "vc-secret-123456",
            "timeout": 0.5,
            "logs": True,
        }
    )
    async with httpx.AsyncClient() as http:
        backend = ViewComfyBackend(section, http=http, clock=clock)
        async with asyncio.timeout(HANG_GUARD):
            with pytest.raises(NoAnswer):
                await backend.run({"6-inputs-text": "a cat"})


async def test_langflow_image_download_that_never_ends_is_given_up(
    url: str, base_url: str, state: LangflowState, clock: SimulatedClock
) -> None:
    """The image for the flow trickles forever: the download ends within its deadline, and the
    caption is written without the image (the Langflow emulator still answers the run)."""
    section = LangflowSection(
        base_url=base_url, flow="caption", api_key=LF_KEY, send_image=True, timeout=0.5
    )
    persona = Persona(name="mira", topics=["sea"])
    async with httpx.AsyncClient() as http:
        captioner = LangflowCaptioner(section, persona, http=http, clock=clock)
        request = CaptionRequest("sea", "a sea", image_url=url + "/image.png")
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(HANG_GUARD):
                text = await captioner.write_caption(request, 0)
    assert text
    assert not state.uploads
    failed = [e for e in logs if e["event"] == "langflow.upload_failed"]
    assert failed and "deadline" in failed[0]["error"]
