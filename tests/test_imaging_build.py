"""build_router from agent.toml data: the chain over real emulators, and lazy SDK imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.config import AgentConfig, parse_config
from glimpse_agent.imaging import ImageRequest, ImageRouter, ImagingFailed, build_router
from glimpse_agent.imaging.costs import openai_cost
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.images import glif as glif_app
from glimpse_agent.sandbox.images import huggingface as hf_app
from glimpse_agent.sandbox.images import openai as openai_images
from glimpse_agent.sandbox.images import viewcomfy as viewcomfy_app
from glimpse_agent.sandbox.images.faults import Faults

REQ = ImageRequest(prompt="a paper boat", persona="aurora")
PERSONA = Persona(name="aurora", topics=["the sea"], budget_usd_per_day=1.0)


class MemorySpend:
    def __init__(self) -> None:
        self.by_day: dict[date, float] = defaultdict(float)
        self.records: list[tuple[float, str]] = []

    def spent_on(self, day: date) -> float:
        return self.by_day[day]

    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        self.by_day[at.astimezone(UTC).date()] += amount_usd
        self.records.append((amount_usd, backend))


Served = tuple[Starlette, str]


class Emulators:
    """Every image emulator, each on its own loopback port: ``(app, url)`` of each."""

    def __init__(self, glif: Served, viewcomfy: Served, hf: Served, openai: Served) -> None:
        self.glif, self.viewcomfy, self.hf, self.openai = (
            app for app, _ in (glif, viewcomfy, hf, openai)
        )
        self.urls = [url for _, url in (glif, viewcomfy, hf, openai)]

    def reset(self) -> None:
        """Fresh emulator states (no faults, no history) for the next test."""
        self.glif.state.glif = glif_app.GlifState()
        self.viewcomfy.state.viewcomfy = viewcomfy_app.ViewComfyState()
        self.hf.state.hf = hf_app.HFState()
        self.openai.state.openai_images.faults = Faults()

    def release(self) -> None:
        self.viewcomfy.state.viewcomfy.faults.release()
        self.hf.state.hf.faults.release()

    def images_section(self, order: list[str], glif_id: str = "glif-schnell") -> dict[str, Any]:
        glif, vc, hf, oa = self.urls
        return {
            "order": order,
            "glif": {
                "token": glif_app.TOKEN,
                "glif_id": glif_id,
                "base_url": glif,
                "api_url": f"{glif}/api",
                "timeout": 5,
            },
            "viewcomfy": {
                "url": vc,
                "api_url": vc,
                "client_id": viewcomfy_app.CLIENT_ID,
                "client_secret": viewcomfy_app.CLIENT_SECRET,
                "timeout": 5,
            },
            "huggingface": {
                "token": hf_app.TOKEN,
                "base_url": f"{hf}/models/{hf_app.MODEL}",
                "width": 256,
                "height": 256,
                "timeout": 5,
            },
            "openai": {"api_key": openai_images.API_KEY, "base_url": f"{oa}/v1", "timeout": 5},
            "local": {"width": 64, "height": 64},
        }


@pytest.fixture(scope="module")
def emulators(
    glif_server: Served, vc_server: Served, hf_server: Served, oa_server: Served
) -> Emulators:
    return Emulators(glif_server, vc_server, hf_server, oa_server)


@pytest.fixture(autouse=True)
def _fresh_emulators(request: pytest.FixtureRequest) -> Iterator[None]:
    if "emulators" not in request.fixturenames:
        yield
        return
    emus: Emulators = request.getfixturevalue("emulators")
    emus.reset()
    yield
    emus.release()


def config_for(tmp_path: Path, images: dict[str, Any]) -> AgentConfig:
    return parse_config(
        {"persona": "aurora.toml", "images": images}, source=tmp_path / "agent.toml", env={}
    )


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[Any]:
    routers: list[ImageRouter] = []

    def make(images: dict[str, Any], spend: MemorySpend | None = None) -> ImageRouter:
        router = build_router(
            config_for(tmp_path, images),
            PERSONA,
            spend=spend or MemorySpend(),
            clock=SimulatedClock(utc(2026, 3, 1, 12)),
            state_dir=tmp_path,
        )
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.aclose()


async def test_chain_follows_the_configured_order(emulators: Emulators, built: Any) -> None:
    """Forbidden-model glif and a ViewComfy outage are passed over; Hugging Face answers."""
    emulators.viewcomfy.state.viewcomfy.faults.always("status", status=503)
    router = built(
        emulators.images_section(
            ["glif", "viewcomfy", "huggingface", "openai", "local"], glif_id="glif-flux-dev"
        )
    )
    assert router.names == ["glif", "viewcomfy", "huggingface", "openai", "local"]
    with structlog.testing.capture_logs() as logs:
        image = await router.generate(REQ)
    assert image.backend == "huggingface" and image.data is not None
    outcomes = [(e["backend"], e["outcome"]) for e in logs if e["event"] == "image.attempt"]
    assert outcomes == [
        ("glif", "configuration"),
        ("viewcomfy", "unavailable"),
        ("huggingface", "ok"),
    ]


async def test_glif_url_image_with_attribution(emulators: Emulators, built: Any) -> None:
    """A clean glif first in the chain gives a URL image with Glif's attribution line."""
    image = await built(emulators.images_section(["glif", "local"])).generate(REQ)
    assert image.backend == "glif" and image.url and image.attribution


async def test_paid_image_records_spend(emulators: Emulators, built: Any) -> None:
    """An OpenAI image records its estimated cost in the spend book."""
    spend = MemorySpend()
    image = await built(emulators.images_section(["openai"]), spend).generate(REQ)
    assert image.backend == "openai"
    assert spend.records == [(openai_cost("gpt-image-1.5", "medium", "1024x1024"), "openai")]


async def test_local_is_the_last_resort(emulators: Emulators, built: Any) -> None:
    """With ViewComfy refusing the credentials, the offline generator still makes an image."""
    images = emulators.images_section(["viewcomfy", "local"])
    images["viewcomfy"]["client_secret"] = "wrong-secret-0000"
    image = await built(images).generate(REQ)
    assert image.backend == "local" and (image.width, image.height) == (64, 64)


async def test_local_is_never_added_behind_the_users_back(emulators: Emulators, built: Any) -> None:
    """Without order, the chain is the configured sections only: the offline generator is a
    fallback only when the user lists it, so a Glif outage is a failure, not a doodle."""
    images = emulators.images_section(["glif"])
    del images["order"]
    router = built({"glif": images["glif"]})
    assert router.names == ["glif"]
    emulators.glif.state.glif.faults.always("status", status=503)
    with pytest.raises(ImagingFailed) as info:
        await router.generate(REQ)
    assert [a.backend for a in info.value.attempts] == ["glif"]


async def test_everything_down_is_imaging_failed(built: Any) -> None:
    """Unreachable services only: ImagingFailed lists every backend's attempt."""
    images = {
        "order": ["viewcomfy"],
        "viewcomfy": {"url": "http://127.0.0.1:9", "client_id": "a", "client_secret": "b"},
    }
    with pytest.raises(ImagingFailed) as info:
        await built(images).generate(REQ)
    assert [a.backend for a in info.value.attempts] == ["viewcomfy"]


async def test_router_check_runs_every_backend(emulators: Emulators, built: Any) -> None:
    """router.check() reaches every configured emulator and reports them usable."""
    router = built(
        emulators.images_section(["glif", "viewcomfy", "huggingface", "openai", "local"])
    )
    assert await router.check() == {
        "glif": None,
        "viewcomfy": None,
        "huggingface": None,
        "openai": None,
        "local": None,
    }


async def test_a_shared_http_client_is_used_and_left_open(
    emulators: Emulators, tmp_path: Path
) -> None:
    """A caller's httpx client is used for HTTP backends and not closed by the router."""
    async with httpx.AsyncClient() as http:
        router = build_router(
            config_for(tmp_path, emulators.images_section(["glif"])),
            PERSONA,
            spend=MemorySpend(),
            clock=SimulatedClock(utc(2026, 1, 1)),
            state_dir=tmp_path,
            http=http,
        )
        await router.generate(REQ)
        await router.aclose()
        assert not http.is_closed


def test_sdks_are_not_imported_without_their_backends(tmp_path: Path) -> None:
    """A daemon configured without HF/OpenAI never imports huggingface_hub or openai."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from glimpse_agent.clock import SystemClock
        from glimpse_agent.config import parse_config
        from glimpse_agent.imaging import ImageRequest, build_router
        from glimpse_agent.persona import Persona

        images = {{
            "order": ["glif", "viewcomfy", "local"],
            "glif": {{"token": "t", "glif_id": "g"}},
            "viewcomfy": {{"url": "https://vc.example", "client_id": "a",
                          "client_secret": "b"}},
            "local": {{"width": 64, "height": 64}},
        }}
        tmp = Path({str(tmp_path)!r})
        config = parse_config({{"persona": "p.toml", "images": images}},
                              source=tmp / "agent.toml", env={{}})
        persona = Persona(name="aurora", topics=["x"])

        class Spend:
            def spent_on(self, day): return 0.0
            def record_spend(self, amount_usd, *, backend, at): pass

        async def main():
            router = build_router(config, persona, spend=Spend(), clock=SystemClock(),
                                  state_dir=tmp)
            await router.backends[-1].generate(ImageRequest(prompt="x"))
            await router.aclose()

        asyncio.run(main())
        loaded = sorted(m for m in ("openai", "huggingface_hub", "httpx2") if m in sys.modules)
        print(",".join(loaded) or "none")
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "none", out.stderr
