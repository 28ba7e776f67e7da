"""The Hugging Face backend through the real huggingface_hub SDK, pointed at the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import HuggingFaceSection
from glimpse_agent.errors import (
    BadResponse,
    ContentRejected,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.imaging.backends.huggingface import HuggingFaceBackend
from glimpse_agent.imaging.base import ImageRequest
from glimpse_agent.imaging.prepare import image_size, sniff_mime
from glimpse_agent.sandbox.images.huggingface import MODEL, TOKEN, HFState

REQ = ImageRequest(prompt="a cat sorcerer", seed=11, persona="aurora")


@pytest.fixture
def hf(hf_server: tuple[Starlette, str]) -> Iterator[tuple[HFState, str]]:
    app, url = hf_server
    state = app.state.hf = HFState()
    yield state, url
    state.faults.release()


@pytest.fixture
async def make(hf: tuple[HFState, str], clock: SimulatedClock) -> AsyncIterator[Any]:
    made: list[HuggingFaceBackend] = []

    def factory(**overrides: Any) -> HuggingFaceBackend:
        values: dict[str, Any] = {
            "token": TOKEN,
            "base_url": f"{hf[1]}/models/{MODEL}",
            "width": 512,
            "height": 256,
            "timeout": 5,
        }
        values.update(overrides)
        backend = HuggingFaceBackend(HuggingFaceSection.model_validate(values), clock=clock)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.aclose()


async def test_text_to_image_returns_png(hf: tuple[HFState, str], make: Any) -> None:
    """The SDK posts inputs + parameters with the hf_ token; we get PNG bytes of that size."""
    image = await make().generate(REQ)
    assert image.data is not None and sniff_mime(image.data) == "image/png"
    assert image_size(image.data) == (512, 256) and (image.width, image.height) == (512, 256)
    assert image.model == MODEL and image.backend == "huggingface" and image.cost_usd == 0.0
    (sent,) = hf[0].requests
    assert sent["path"] == f"/models/{MODEL}" and sent["accept"] == "image/png"
    assert sent["body"] == {
        "inputs": "a cat sorcerer",
        "parameters": {"width": 512, "height": 256, "num_inference_steps": 4, "seed": 11},
    }


async def test_bare_endpoint_url_works(hf: tuple[HFState, str], make: Any) -> None:
    """base_url may be any endpoint URL: the SDK posts to it as is."""
    image = await make(base_url=f"{hf[1]}/my-endpoint").generate(REQ)
    assert image.data is not None and hf[0].requests[0]["path"] == "/my-endpoint"


async def test_429_is_retried_after_retry_after(
    hf: tuple[HFState, str], make: Any, clock: SimulatedClock
) -> None:
    """A 429 with Retry-After: 4 is retried after 4 s of the injected clock."""
    hf[0].faults.arm("status", status=429, retry_after=4)
    before = clock.now()
    assert (await make().generate(REQ)).data
    assert (clock.now() - before).total_seconds() == 4


async def test_model_loading_503_is_retried(hf: tuple[HFState, str], make: Any) -> None:
    """A cold model's 503 ("currently loading") is retried; the next try succeeds."""
    hf[0].faults.arm("loading")
    assert (await make().generate(REQ)).data
    assert len(hf[0].requests) == 1


async def test_persistent_503_gives_up_unavailable(hf: tuple[HFState, str], make: Any) -> None:
    """Three 503s in a row: Unavailable with the server's message."""
    hf[0].faults.arm("loading", times=3)
    with pytest.raises(Unavailable, match="currently loading"):
        await make().generate(REQ)


async def test_rate_limit_that_persists_is_rate_limited(hf: tuple[HFState, str], make: Any) -> None:
    """429s on every try surface as RateLimited with the Retry-After seconds."""
    hf[0].faults.always("status", status=429, retry_after=5)
    with pytest.raises(RateLimited) as info:
        await make().generate(REQ)
    assert info.value.retry_after == 5


async def test_timeout_is_unavailable(hf: tuple[HFState, str], make: Any) -> None:
    """No answer within the timeout: the SDK's InferenceTimeoutError becomes Unavailable."""
    hf[0].faults.always("hang", seconds=5)
    with pytest.raises(Unavailable, match="no answer"):
        await make(timeout=0.05).generate(REQ)


async def test_wrong_token_is_unauthorized(make: Any) -> None:
    """An unknown token: 401 -> Unauthorized, and the token is not in the message."""
    with pytest.raises(Unauthorized) as info:
        await make(token="hf_wrongwrongwrong").generate(REQ)
    assert "hf_wrong" not in str(info.value)


async def test_unknown_model_is_rejected(hf: tuple[HFState, str], make: Any) -> None:
    """A model the service does not have: 404 -> Rejected (a configuration failure)."""
    with pytest.raises(Rejected, match="does not exist") as info:
        await make(base_url=f"{hf[1]}/models/nobody/nothing").generate(REQ)
    assert not isinstance(info.value, ContentRejected)


async def test_safety_refusal_is_content_rejected(hf: tuple[HFState, str], make: Any) -> None:
    """A 400 saying the prompt was flagged is ContentRejected, and not retried."""
    hf[0].faults.arm("content", times=2)
    with pytest.raises(ContentRejected, match="NSFW"):
        await make().generate(REQ)
    assert len(hf[0].faults._queue) == 1


async def test_unreachable_endpoint_is_unavailable(make: Any) -> None:
    """A connection refused by the host (httpx2 ConnectError) becomes Unavailable."""
    with pytest.raises(Unavailable, match="cannot reach"):
        await make(base_url="http://127.0.0.1:9/x").generate(REQ)


async def test_check_with_an_endpoint_only_loads_the_sdk(
    hf: tuple[HFState, str], make: Any
) -> None:
    """check() for an endpoint URL builds the client and passes without a billed call."""
    backend = make()
    await backend.check()
    assert backend._client is not None  # the SDK's client was built
    assert hf[0].requests == []  # and no image was asked for (an image is the billed call)


async def test_200_with_an_error_body_is_a_bad_response(hf: tuple[HFState, str], make: Any) -> None:
    """HTTP 200 carrying a JSON error instead of image bytes is a BadResponse, not retried."""
    hf[0].faults.arm("error_200", message="internal error", times=2)
    with pytest.raises(BadResponse):
        await make().generate(REQ)
    assert len(hf[0].faults._queue) == 1


async def test_image_cut_mid_body_is_retried(hf: tuple[HFState, str], make: Any) -> None:
    """An image that breaks off half-way is retried (schnell is cheap); the retry succeeds."""
    hf[0].faults.arm("cut")
    image = await make().generate(REQ)
    assert image.data is not None and sniff_mime(image.data) == "image/png"
    assert len(hf[0].requests) == 1  # the cut answer was not a completed request


async def test_image_always_cut_is_unavailable(hf: tuple[HFState, str], make: Any) -> None:
    """Answers that always break off end as Unavailable after our retries."""
    hf[0].faults.always("cut")
    with pytest.raises(Unavailable, match="dropped"):
        await make().generate(REQ)


def test_client_has_a_finite_timeout_and_the_configured_model(make: Any) -> None:
    """The SDK client gets the section's finite timeout (default 120 s); no base_url means the
    configured model at the pinned provider."""
    assert HuggingFaceSection.model_validate({"token": TOKEN}).timeout == 120.0
    client = make(timeout=7)._get_client()
    assert client.timeout == 7
    hub_client = make(base_url=None)._get_client()
    assert hub_client.model == MODEL and hub_client.provider == "hf-inference"
    assert hub_client.timeout == 5


TELEMETRY_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from glimpse_agent.clock import SystemClock
    from glimpse_agent.config import HuggingFaceSection
    from glimpse_agent.imaging.base import ImageRequest
    from glimpse_agent.imaging.backends.huggingface import HuggingFaceBackend

    async def main(url, token):
        section = HuggingFaceSection(token=token, base_url=url, width=64, height=64, timeout=10)
        backend = HuggingFaceBackend(section, clock=SystemClock())
        await backend.generate(ImageRequest(prompt="x"))
        await backend.aclose()
        import huggingface_hub.constants as c
        print(os.environ.get("HF_HUB_DISABLE_TELEMETRY"), c.HF_HUB_DISABLE_TELEMETRY)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.parametrize("preimport", [False, True])
def test_telemetry_is_off_even_when_the_user_did_not_say(
    hf: tuple[HFState, str], tmp_path: Path, preimport: bool
) -> None:
    """In a fresh process without HF_HUB_DISABLE_TELEMETRY, using the backend turns the Hub's
    telemetry off, even if something imported huggingface_hub before us."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HF_HUB_DISABLE_TELEMETRY", "DISABLE_TELEMETRY", "DO_NOT_TRACK"}
        and not k.lower().endswith("_proxy")
    }
    env["HF_HOME"] = str(tmp_path / "hf-home")
    code = ("import huggingface_hub\n" if preimport else "") + TELEMETRY_CHILD
    proc = subprocess.run(
        [sys.executable, "-c", code, f"{hf[1]}/models/{MODEL}", TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "True"
