"""The Glimpse BYOK backend through the real GlimpseClient against the Glimpse emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.config import GlimpseImagesSection, parse_config
from glimpse_agent.errors import (
    BadResponse,
    ContentRejected,
    NoAnswer,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.imaging import build_router
from glimpse_agent.imaging.backends.glimpse_byok import FINGERPRINT_FILE, GlimpseImagesBackend
from glimpse_agent.imaging.base import GeneratedImage, ImageRequest
from glimpse_agent.imaging.prepare import sniff_mime
from glimpse_agent.imaging.router import ImageRouter
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.glimpse.testing import GlimpseHost
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld

REQ = ImageRequest(prompt="a lantern festival", persona="aurora")
HF_KEY = "hf_userkey000000001"
PUT = "PUT /agents/me/settings/image-generation"
GET = "GET /agents/me/settings/image-generation"
GENERATE = "POST /images/generate"


class Glimpse:
    def __init__(self, world: GlimpseWorld, url: str, agent_id: str, key: str) -> None:
        self.world = world
        self.url = url
        self.agent_id = agent_id
        self.key = key

    def count(self, route: str) -> int:
        return self.world.stats.requests_by_route.get(route, 0)


@pytest.fixture
def glimpse(host: GlimpseHost) -> Iterator[Glimpse]:
    with host.serve(start=utc(2026, 3, 2, 9), seed=1, population=0) as sandbox:
        agent_id, key = sandbox.world.create_agent("aurora")
        yield Glimpse(sandbox.world, sandbox.base_url, agent_id, key)


@pytest.fixture
async def client(glimpse: Glimpse) -> AsyncIterator[GlimpseClient]:
    async with (
        httpx.AsyncClient(verify=False) as http,
        GlimpseClient(glimpse.url, glimpse.key, http=http) as c,
    ):
        yield c


def backend(client: GlimpseClient, state_dir: Path, **overrides: Any) -> GlimpseImagesBackend:
    values: dict[str, Any] = {"provider": "huggingface", "api_key": HF_KEY}
    values.update(overrides)
    section = GlimpseImagesSection.model_validate(values)
    return GlimpseImagesBackend(section, client=client, state_dir=state_dir)


async def test_stored_mode_puts_the_key_once_and_generates(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """The first run stores the key on Glimpse; the image is a URL on Glimpse, a real PNG."""
    image = await backend(client, tmp_path).generate(REQ)
    stored = glimpse.world.image_settings(glimpse.agent_id)
    assert stored is not None and (stored.provider, stored.api_key) == ("huggingface", HF_KEY)
    assert image.url is not None and image.url.startswith(glimpse.url + "/images/")
    assert image.backend == "glimpse" and image.model and image.width
    assert image.cost_usd == 0.0
    async with httpx.AsyncClient() as http:
        assert sniff_mime((await http.get(image.url)).content) == "image/png"


async def test_fingerprint_avoids_a_second_put_after_restart(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """A new process with the same key only reads the settings; the file never holds the key."""
    await backend(client, tmp_path).generate(REQ)
    again = backend(client, tmp_path)  # as after a restart
    await again.generate(REQ)
    await again.generate(REQ)
    assert glimpse.count(PUT) == 1 and glimpse.count(GET) == 1
    saved = (tmp_path / FINGERPRINT_FILE).read_text()
    assert HF_KEY not in saved and len(saved.strip()) == 64
    assert (tmp_path / FINGERPRINT_FILE).stat().st_mode & 0o777 == 0o600


async def test_a_changed_key_is_put_again(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """A new key (or provider) in the config is stored again on the next run."""
    await backend(client, tmp_path).generate(REQ)
    await backend(client, tmp_path, api_key="hf_userkey000000002").generate(REQ)
    assert glimpse.count(PUT) == 2
    stored = glimpse.world.image_settings(glimpse.agent_id)
    assert stored is not None and stored.api_key == "hf_userkey000000002"


async def test_key_removed_on_the_server_is_put_again(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """If the stored key was deleted on Glimpse, the next process stores it again."""
    await backend(client, tmp_path).generate(REQ)
    await client.delete_image_settings()
    await backend(client, tmp_path).generate(REQ)
    assert glimpse.count(PUT) == 2


async def test_headers_mode_sends_the_key_with_each_request(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """headers mode stores nothing on Glimpse and nothing in the state dir."""
    image = await backend(client, tmp_path, mode="headers", provider="openai").generate(REQ)
    assert image.url and glimpse.count(PUT) == 0
    assert glimpse.world.image_settings(glimpse.agent_id) is None
    assert not (tmp_path / FINGERPRINT_FILE).exists()
    assert image.cost_usd == 0.04  # billed at the user's OpenAI account


async def test_daily_generation_limit_is_a_rate_limit(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """The seventh generation of the day is RateLimited (Glimpse allows six)."""
    b = backend(client, tmp_path)
    for _ in range(6):
        await b.generate(REQ)
    with pytest.raises(RateLimited):
        await b.generate(REQ)


async def test_provider_refusing_the_key_is_a_configuration_failure(
    client: GlimpseClient, tmp_path: Path
) -> None:
    """A provider key the provider refuses is Rejected, not a content failure."""
    with pytest.raises(Rejected) as info:
        await backend(client, tmp_path, api_key="hf_revoked00000001").generate(REQ)
    assert not isinstance(info.value, ContentRejected)


async def test_check_needs_a_working_glimpse_key(glimpse: Glimpse, tmp_path: Path) -> None:
    """check() reads the settings: fine with the agent's key, Unauthorized with a wrong one."""
    async with GlimpseClient(glimpse.url, glimpse.key) as good:
        await backend(good, tmp_path).check()
    async with GlimpseClient(glimpse.url, "glm_wrongwrongwrong") as bad:
        with pytest.raises(Unauthorized):
            await backend(bad, tmp_path).check()


async def test_build_router_makes_its_own_glimpse_client(glimpse: Glimpse, tmp_path: Path) -> None:
    """Without a client passed in, build_router uses [glimpse] base_url and api_key."""

    raw = {
        "persona": "p.toml",
        "glimpse": {"base_url": glimpse.url, "api_key": glimpse.key},
        "images": {"glimpse": {"provider": "huggingface", "api_key": HF_KEY}},
    }
    config = parse_config(raw, source=tmp_path / "agent.toml", env={})
    router = build_router(
        config,
        Persona(name="aurora", topics=["x"]),
        spend=NoSpend(),
        clock=SimulatedClock(utc(2026, 3, 2, 9)),
        state_dir=tmp_path,
    )
    try:
        image = await router.generate(REQ)
    finally:
        await router.aclose()
    assert image.backend == "glimpse" and image.url


async def test_server_error_is_unavailable_and_not_sent_again(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """A 5xx from /images/generate is Unavailable; it is not retried here (the router moves on),
    since a generation may count against the day's six."""
    glimpse.world.faults.fail(503, times=2, path="/images/generate")
    with pytest.raises(Unavailable):
        await backend(client, tmp_path).generate(REQ)
    assert glimpse.world.faults.pending == 1


async def test_rate_limit_429_is_not_sent_again(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """A 429 from /images/generate is RateLimited at once, with no second request."""
    glimpse.world.faults.fail(429, times=2, path="/images/generate")
    with pytest.raises(RateLimited):
        await backend(client, tmp_path, mode="headers").generate(REQ)
    assert glimpse.world.faults.pending == 1


async def test_generation_timeout_is_unavailable(glimpse: Glimpse, tmp_path: Path) -> None:
    """A generation that does not answer within the Glimpse timeout is Unavailable."""
    glimpse.world.faults.hang(5.0, path="/images/generate")
    try:
        async with GlimpseClient(glimpse.url, glimpse.key, timeout=0.2) as slow:
            with pytest.raises(Unavailable, match="timed out"):
                await backend(slow, tmp_path, mode="headers").generate(REQ)
    finally:
        glimpse.world.faults.release()


async def test_unreadable_success_is_a_bad_response(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """HTTP 200 whose body is not the generation JSON is a BadResponse."""
    glimpse.world.faults.garbage(path="/images/generate")
    with pytest.raises(BadResponse):
        await backend(client, tmp_path, mode="headers").generate(REQ)


@pytest.mark.parametrize(
    ("status", "code", "message", "content"),
    [
        (400, "content_policy_violation", "NSFW prompt", True),
        (422, "content_policy_violation", "Prompt rejected by safety system", True),
        (400, "provider_auth_failed", "refused the key", False),
    ],
)
async def test_prompt_refusal_is_content_rejected(
    glimpse: Glimpse,
    client: GlimpseClient,
    tmp_path: Path,
    status: int,
    code: str,
    message: str,
    content: bool,
) -> None:
    """A 400/422 saying the prompt was refused is ContentRejected (no fallback); other 400s stay
    configuration failures (Rejected)."""
    glimpse.world.faults.refuse(code, message, status=status, path="/images/generate")
    with pytest.raises(Rejected) as info:
        await backend(client, tmp_path, mode="headers").generate(REQ)
    assert isinstance(info.value, ContentRejected) is content
    assert glimpse.world.faults.pending == 0


# ---------------------------------------------------------------------- in the router's chain


class Spare:
    """A second backend after Glimpse in the chain; counts how often it is asked."""

    name = "spare"

    def __init__(self) -> None:
        self.calls = 0

    def estimated_cost(self) -> float:
        return 0.0

    async def check(self) -> None:
        return None

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.calls += 1
        return GeneratedImage(
            backend=self.name, model="spare", prompt=request.prompt, url="https://img.example/s.png"
        )


class NoSpend:
    def spent_on(self, day: date) -> float:
        return 0.0

    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        raise AssertionError("a free backend records no spend")


def chain(first: GlimpseImagesBackend, spare: Spare) -> ImageRouter:
    return ImageRouter(
        [first, spare],
        spend=NoSpend(),
        budget_usd_per_day=1.0,
        clock=SimulatedClock(utc(2026, 3, 2, 9)),
        persona="aurora",
    )


async def generations_used(glimpse: Glimpse, client: GlimpseClient) -> int:
    """Today's generations, as Glimpse's own limits endpoint reports them."""
    windows = (await client.limits(glimpse.agent_id))["limits"]["generation"]["windows"]
    return int(next(w["used"] for w in windows if w["period"] == "day"))


async def test_content_refusal_stops_the_chain_and_spends_no_generation(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """Glimpse refusing the prompt ends the chain: the next backend is not asked to draw it,
    the prompt went to Glimpse once, and (as we assume of the real service) the refusal did
    not count against the day's six."""
    glimpse.world.faults.refuse(path="/images/generate")
    spare = Spare()
    with pytest.raises(ContentRejected, match="content_policy_violation"):
        await chain(backend(client, tmp_path), spare).generate(REQ)
    assert spare.calls == 0
    assert glimpse.count(GENERATE) == 1
    assert await generations_used(glimpse, client) == 0


async def test_cut_answer_moves_on_without_sending_again(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """An answer cut off mid-body is a retryable failure: the chain moves on to the next
    backend, and Glimpse is not asked again, since the lost generation already spent one of
    the day's six."""
    glimpse.world.faults.cut(times=2, path="/images/generate")
    spare = Spare()
    image = await chain(backend(client, tmp_path), spare).generate(REQ)
    assert image.backend == "spare" and spare.calls == 1
    assert glimpse.count(GENERATE) == 1 and glimpse.world.faults.pending == 1
    assert await generations_used(glimpse, client) == 1


async def test_cut_answer_is_unavailable(
    glimpse: Glimpse, client: GlimpseClient, tmp_path: Path
) -> None:
    """Alone, the backend reports a cut answer as Unavailable (retryable), not a bad response."""
    glimpse.world.faults.cut(times=2, path="/images/generate")
    with pytest.raises(Unavailable) as info:
        await backend(client, tmp_path, mode="headers").generate(REQ)
    assert info.value.retryable and "RemoteProtocolError" in str(info.value)
    # Said as what happened (it may have been made), not as an unreachable server.
    assert isinstance(info.value, NoAnswer) and "the answer broke off" in str(info.value)
    assert "cannot reach" not in str(info.value)
    assert glimpse.count(GENERATE) == 1 and glimpse.world.faults.pending == 1
