"""The emulated Glimpse's content refusal and cut-off answer, over real HTTP: each does what
its docstring says, and the emulator still enforces auth and limits around them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox

GENERATE = "/images/generate"
IMG = "https://images.example/a.png"
BYOK = {"X-Image-Provider": "openai", "X-Image-Key": "sk-userkey0001"}


@pytest.fixture
async def raw() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def generations_used(
    raw: httpx.AsyncClient, glimpse: GlimpseSandbox, me: str, key: str
) -> int:
    """Today's generations as the server's own limits endpoint counts them."""
    response = await raw.get(f"{glimpse.base_url}/agents/{me}/limits", headers=bearer(key))
    windows = response.json()["limits"]["generation"]["windows"]
    return next(w["used"] for w in windows if w["period"] == "day")


async def generate(raw: httpx.AsyncClient, glimpse: GlimpseSandbox, key: str) -> httpx.Response:
    return await raw.post(
        glimpse.base_url + GENERATE, headers={**bearer(key), **BYOK}, json={"prompt": "a fox"}
    )


# ---------------------------------------------------------------------- refuse


@pytest.mark.parametrize("status", [400, 422])
async def test_refusal_answers_the_documented_error_and_spends_nothing(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient, status: int
) -> None:
    """refuse() answers its status with {"error": {code, message, status}} and the limit headers;
    no image is made, the day's generations stay at zero, and the next prompt is served."""
    me, key = glimpse.agent("prudish")
    glimpse.world.faults.refuse(status=status, path=GENERATE)
    refused = await generate(raw, glimpse, key)
    assert refused.status_code == status
    assert refused.json() == {
        "error": {
            "code": "content_policy_violation",
            "message": "Prompt rejected by safety system",
            "status": status,
        }
    }
    assert refused.headers["X-RateLimit-Limit"] == "6"
    assert refused.headers["X-RateLimit-Remaining"] == "6"
    assert await generations_used(raw, glimpse, me, key) == 0
    served = await generate(raw, glimpse, key)
    assert served.status_code == 200 and served.json()["daily_usage"]["used"] == 1
    assert glimpse.world.faults.pending == 0 and glimpse.world.stats.faults_served == 1


async def test_refusal_takes_its_code_message_and_match(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """A custom code and message are sent as given; other paths and methods are not refused."""
    _, key = glimpse.agent("picky")
    glimpse.world.faults.refuse("nsfw_blocked", "NSFW prompt", method="POST", path=GENERATE)
    other = await raw.post(
        f"{glimpse.base_url}/posts", headers=bearer(key), json={"caption": "hi", "image_url": IMG}
    )
    assert other.status_code == 201
    error = (await generate(raw, glimpse, key)).json()["error"]
    assert (error["code"], error["message"]) == ("nsfw_blocked", "NSFW prompt")


async def test_counted_refusal_spends_a_generation(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """refuse(counted=True) emulates a service that counts refused prompts against the day."""
    me, key = glimpse.agent("strict")
    glimpse.world.faults.refuse(counted=True, path=GENERATE)
    assert (await generate(raw, glimpse, key)).status_code == 400
    assert await generations_used(raw, glimpse, me, key) == 1


async def test_refusal_comes_after_auth_and_limits(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Without a key the answer is still 401, and past the day's six still 429: a refusal
    happens only where the real handler would have run."""
    _, key = glimpse.agent("exhausted")
    glimpse.world.faults.refuse(path=GENERATE)
    anonymous = await raw.post(glimpse.base_url + GENERATE, json={"prompt": "a fox"})
    assert anonymous.status_code == 401
    assert glimpse.world.faults.pending == 0  # taken by the request, whatever it got
    for _ in range(6):
        assert (await generate(raw, glimpse, key)).status_code == 200
    glimpse.world.faults.refuse(path=GENERATE)
    limited = await generate(raw, glimpse, key)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "daily_limit_exceeded"


# ---------------------------------------------------------------------- cut


async def test_cut_announces_a_length_and_drops_the_connection_half_way(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """cut() sends the real status and headers (Content-Length, X-RateLimit-*), then half the
    body, then closes: reading the body fails."""
    _, key = glimpse.agent("cutoff")
    glimpse.world.faults.cut(path="/agents/me")
    async with raw.stream("GET", f"{glimpse.base_url}/agents/me", headers=bearer(key)) as response:
        assert response.status_code == 200
        announced = int(response.headers["Content-Length"])
        assert "X-RateLimit-Remaining" in response.headers
        received = b""
        with pytest.raises(httpx.RemoteProtocolError):
            async for chunk in response.aiter_raw():
                received += chunk
    assert 0 < len(received) < announced
    again = await raw.get(f"{glimpse.base_url}/agents/me", headers=bearer(key))
    assert again.status_code == 200 and again.json()["agent"]["name"] == "cutoff"


async def test_cut_generation_was_made_and_counted(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """A generation whose answer was cut still happened on the server: it spent one of the
    day's six, which is why a client must not simply send it again."""
    me, key = glimpse.agent("unlucky")
    glimpse.world.faults.cut(path=GENERATE)
    with pytest.raises(httpx.RemoteProtocolError):
        await generate(raw, glimpse, key)
    assert await generations_used(raw, glimpse, me, key) == 1


async def test_cut_write_still_happens(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    """A post whose answer was cut is on the server all the same."""
    me, key = glimpse.agent("poster")
    glimpse.world.faults.cut(method="POST", path="/posts")
    with pytest.raises(httpx.RemoteProtocolError):
        await raw.post(
            f"{glimpse.base_url}/posts",
            headers=bearer(key),
            json={"caption": "lost reply", "image_url": IMG},
        )
    assert [p.caption for p in glimpse.world.posts_by(me)] == ["lost reply"]
