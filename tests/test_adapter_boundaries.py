"""Adapter boundaries found wanting in review: secrets cut in half by truncation, credentials in
configured URLs, credential headers carried across hosts by redirects, raw ``httpx`` errors
escaping a backend, and bodies read without a size cap."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.config import GlifSection, LangflowSection, ViewComfySection
from glimpse_agent.errors import BadResponse, Rejected, ServiceError
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.imaging._http import RetryPolicy
from glimpse_agent.imaging.backends.glif import GlifBackend
from glimpse_agent.imaging.backends.viewcomfy import ViewComfyBackend
from glimpse_agent.imaging.base import ImageRequest
from glimpse_agent.persona import Persona
from glimpse_agent.redaction import redact_text, register_secret
from glimpse_agent.writing import CaptionRequest, LangflowCaptioner

GLIF_TOKEN = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"  # Glif tokens have no recognisable shape
VC_SECRET = "vcSecretValue9f8e7d6c5b4a"
LF_KEY = "lfKey0123456789abcdefXYZ"
BYOK_KEY = "byokProviderKey12345678"
PERSONA = Persona(name="mira", voice="wistful", topics=["lighthouses"])
REQ = ImageRequest(prompt="a lighthouse", persona="mira")
NO_RETRY = RetryPolicy(attempts=1)


def clock() -> SimulatedClock:
    return SimulatedClock(utc(2026, 6, 1, 12))


def client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    # As build_router / build_writing / the runtime make them: redirects followed.
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)


def glif(http: httpx.AsyncClient) -> GlifBackend:
    section = GlifSection(
        token=GLIF_TOKEN,
        glif_id="g1",
        base_url="http://glif.test",
        api_url="http://glif.test/api",
        check_models=False,
    )
    return GlifBackend(section, http=http, clock=clock(), retry=NO_RETRY)


def viewcomfy(http: httpx.AsyncClient) -> ViewComfyBackend:
    section = ViewComfySection(
        url="http://vc.test/api/infer", client_id="vcClientId123", client_secret=VC_SECRET
    )
    return ViewComfyBackend(section, http=http, clock=clock(), retry=NO_RETRY)


def langflow(http: httpx.AsyncClient, base_url: str = "http://lf.test") -> LangflowCaptioner:
    return LangflowCaptioner(
        LangflowSection(base_url=base_url, flow="captions", api_key=LF_KEY), PERSONA, http=http
    )


# --------------------------------------------------------------- truncation vs. redaction


async def test_error_detail_never_keeps_the_head_of_a_secret_cut_by_truncation() -> None:
    """A server echoing the token near the end of a long message: the message is shortened
    *after* masking, so no leading half of the token survives the cut."""
    register_secret(GLIF_TOKEN)
    echo = "x" * 185 + " token=" + GLIF_TOKEN

    async with client(lambda r: httpx.Response(400, json={"detail": echo})) as http:
        with pytest.raises(ServiceError) as caught:
            await glif(http).generate(REQ)
    assert GLIF_TOKEN[:6] not in str(caught.value)


async def test_langflow_error_detail_never_keeps_the_head_of_a_cut_secret() -> None:
    register_secret(LF_KEY)
    echo = "y" * 285 + " key " + LF_KEY

    async with client(lambda r: httpx.Response(500, json={"detail": echo})) as http:
        with pytest.raises(ServiceError) as caught:
            await langflow(http).write_caption(CaptionRequest(topic="t", image_prompt="p"), 0)
    assert LF_KEY[:6] not in str(caught.value)


# --------------------------------------------------------------- credentials in URLs


async def test_password_in_a_configured_url_is_not_in_the_error() -> None:
    """Langflow behind a basic-auth proxy: ``https://user:password@host``."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client(refuse) as http:
        with pytest.raises(ServiceError) as caught:
            await langflow(http, "http://lfuser:Hunter2Passw0rd@lf.test").write_caption(
                CaptionRequest(topic="t", image_prompt="p"), 0
            )
        with pytest.raises(ServiceError) as glimpse_caught:
            async with GlimpseClient(
                "http://agent:Hunter2Passw0rd@glimpse.test/api/v1", None, http=http
            ) as g:
                await g.me()
    assert "Hunter2Passw0rd" not in str(caught.value)
    assert "Hunter2Passw0rd" not in str(glimpse_caught.value)


def test_key_in_a_query_string_is_masked_in_log_text() -> None:
    text = "GET http://lf.test/api/v1/run/x?x-api-key=plainKey42&stream=true failed"
    out = redact_text(text)
    assert "plainKey42" not in out
    assert "stream=true" in out
    assert redact_text("http://u:pw12@h.test/") == "http://u:***@h.test/"


# --------------------------------------------------------------- redirects across hosts


def redirecting(seen: dict[str, httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "evil.test":
            seen["evil"] = request
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(307, headers={"Location": "http://evil.test/steal"})

    return handler


async def test_viewcomfy_credentials_do_not_follow_a_redirect_to_another_host() -> None:
    seen: dict[str, httpx.Request] = {}
    async with client(redirecting(seen)) as http:
        with pytest.raises(ServiceError):
            await viewcomfy(http).generate(REQ)
    leaked = seen.get("evil")
    assert leaked is None or VC_SECRET not in str(leaked.headers.raw)


async def test_langflow_key_does_not_follow_a_redirect_to_another_host() -> None:
    seen: dict[str, httpx.Request] = {}
    async with client(redirecting(seen)) as http:
        with pytest.raises(ServiceError):
            await langflow(http).write_caption(CaptionRequest(topic="t", image_prompt="p"), 0)
    leaked = seen.get("evil")
    assert leaked is None or LF_KEY not in str(leaked.headers.raw)


async def test_glimpse_provider_key_does_not_follow_a_redirect_to_another_host() -> None:
    seen: dict[str, httpx.Request] = {}
    async with client(redirecting(seen)) as http:
        g = GlimpseClient("http://glimpse.test/api/v1", "glm_agentkey123456", http=http)
        with pytest.raises(ServiceError):
            await g.generate_image("a cat", provider="openai", provider_key=BYOK_KEY)
        with pytest.raises(ServiceError):
            await g.put_image_settings("openai", BYOK_KEY)
    leaked = seen.get("evil")
    assert leaked is None or (
        BYOK_KEY not in str(leaked.headers.raw) and BYOK_KEY.encode() not in leaked.content
    )


async def test_same_origin_redirects_are_still_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/agents/me":
            return httpx.Response(308, headers={"Location": "/api/v1/agents/me/"})
        assert request.headers["Authorization"] == "Bearer glm_agentkey123456"
        return httpx.Response(200, json={"id": "a1", "name": "mira"})

    async with client(handler) as http:
        me = await GlimpseClient("http://glimpse.test/api/v1", "glm_agentkey123456", http=http).me()
    assert me.name == "mira"


# --------------------------------------------------------------- raw httpx errors


def _not_gzip(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        content=b"this is not gzip",
    )


async def test_an_undecodable_body_is_our_error_not_httpx() -> None:
    async with client(_not_gzip) as http:
        with pytest.raises(BadResponse):
            await glif(http).generate(REQ)
        with pytest.raises(BadResponse):
            await viewcomfy(http).generate(REQ)


async def test_a_redirect_loop_is_our_error_not_httpx() -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": str(request.url)})

    async with client(loop) as http:
        with pytest.raises(Rejected):
            await glif(http).generate(REQ)
        with pytest.raises(Rejected):
            await viewcomfy(http).generate(REQ)


# --------------------------------------------------------------- size caps


class Endless(httpx.AsyncByteStream):
    """A body of 1 MiB chunks that counts how many were read."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b"\x89PNG\r\n\x1a\n" + b"0" * (1024 * 1024 - 8)


async def test_langflow_image_download_stops_at_the_cap() -> None:
    body = Endless(200)

    async with client(lambda r: httpx.Response(200, stream=body)) as http:
        with pytest.raises(ServiceError):
            await langflow(http)._download("http://img.test/huge.png")
    assert body.read <= 12  # 10 MiB cap: a few chunks past it at most, not all 200


async def test_glimpse_json_body_is_read_with_a_cap() -> None:
    body = Endless(400)

    async with client(lambda r: httpx.Response(200, stream=body)) as http:
        with pytest.raises(BadResponse):
            await GlimpseClient("http://glimpse.test/api/v1", "glm_k123456", http=http).me()
    assert body.read < 400


async def test_glif_json_body_is_read_with_a_cap() -> None:
    body = Endless(400)

    async with client(lambda r: httpx.Response(200, stream=body)) as http:
        with pytest.raises(BadResponse):
            await glif(http).generate(REQ)
    assert body.read < 400
