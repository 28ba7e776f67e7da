"""Every emulator at once, on loopback, sharing one simulated clock: what the ``sandbox``
command runs against, and what end-to-end tests use.

    with SandboxStack(start=utc(2026, 3, 2)) as stack:
        raw = stack.agent_toml(persona_path, state_dir, images=["local"])
        config = parse_config(raw, source=state_dir / "agent.toml")
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Self

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import AgentConfig
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.images import glif as glif_app
from glimpse_agent.sandbox.images import huggingface as hf_app
from glimpse_agent.sandbox.images import openai as openai_images
from glimpse_agent.sandbox.images import viewcomfy as viewcomfy_app
from glimpse_agent.sandbox.images.glif import create_glif_app
from glimpse_agent.sandbox.images.huggingface import create_hf_app
from glimpse_agent.sandbox.images.openai import OpenAIImagesState, image_routes
from glimpse_agent.sandbox.images.viewcomfy import create_viewcomfy_app
from glimpse_agent.sandbox.langflow.app import LangflowState, langflow_routes
from glimpse_agent.sandbox.langflow.model import plausible_caption
from glimpse_agent.sandbox.openai_chat import ChatState, chat_routes
from glimpse_agent.sandbox.server import LoopbackServers, Startable

LANGFLOW_KEY = "lf-sandbox-key-0001"
CHAT_KEY = "sk-sandbox-chat-0001"
CAPTION_FLOW = "caption"
CAPTION_PROMPT = (
    "Write a short caption for my new image of {topic}. Voice: {voice}. End with: {hashtags}"
)


class SandboxStack(Startable):
    """Glimpse (with a seeded crowd), Glif, ViewComfy, Langflow, Hugging Face and OpenAI
    (chat + images) emulators, each on its own loopback port."""

    def __init__(self, *, start: datetime, seed: int = 7, population: int = 12) -> None:
        from starlette.applications import Starlette

        self.clock = SimulatedClock(start)
        self.world = GlimpseWorld(self.clock, seed=seed, population=population)
        self.langflow = LangflowState(api_key=LANGFLOW_KEY)
        # The flow's Prompt asks its model for a caption in the persona's voice; the emulated
        # model answers like one (varied per post), rather than pasting the voice text back.
        self.langflow.add_flow(
            endpoint_name=CAPTION_FLOW,
            template=CAPTION_PROMPT,
            model=plausible_caption,
        )
        self.chat = ChatState(api_key=CHAT_KEY)
        self.images = OpenAIImagesState()
        openai_app = Starlette(routes=[*chat_routes(self.chat), *image_routes(self.images)])
        self._servers = LoopbackServers(
            {
                "glimpse": create_glimpse_app(self.world),
                "glif": create_glif_app(),
                "viewcomfy": create_viewcomfy_app(),
                "langflow": Starlette(routes=langflow_routes(self.langflow)),
                "huggingface": create_hf_app(),
                "openai": openai_app,
            }
        )
        self.servers = self._servers.servers

    @property
    def glimpse_url(self) -> str:
        return self.url("glimpse") + API_ROOT

    def url(self, name: str) -> str:
        return self._servers.url(name)

    def start(self) -> Self:
        self._servers.start()
        return self

    def stop(self) -> None:
        self.langflow.release()
        self.chat.release()
        self._servers.stop()

    def image_sections(self) -> dict[str, dict[str, Any]]:
        """``[images.*]`` sections pointing at the emulators (for every backend)."""
        return {
            "glif": {
                "token": glif_app.TOKEN,
                "glif_id": "glif-schnell",
                "base_url": self.url("glif"),
                "api_url": self.url("glif") + "/api",
            },
            "viewcomfy": {
                "url": self.url("viewcomfy"),
                "api_url": self.url("viewcomfy"),
                "client_id": viewcomfy_app.CLIENT_ID,
                "client_secret": viewcomfy_app.CLIENT_SECRET,
                "logs": True,
            },
            "glimpse": {"provider": "huggingface", "api_key": hf_app.TOKEN, "mode": "stored"},
            "huggingface": {
                "token": hf_app.TOKEN,
                "base_url": f"{self.url('huggingface')}/models/{hf_app.MODEL}",
            },
            "openai": {"api_key": openai_images.API_KEY, "base_url": self.url("openai") + "/v1"},
            "local": {"width": 384, "height": 384},
        }

    def agent_toml(
        self,
        persona: Path,
        state_dir: Path,
        *,
        api_key: str,
        images: list[str] | None = None,
        captions: list[str] | None = None,
        llm: bool = True,
    ) -> dict[str, Any]:
        """An ``agent.toml`` (as a dict) for one persona against this stack."""
        images = images or ["local"]
        sections = self.image_sections()
        raw: dict[str, Any] = {
            "persona": str(persona),
            "state_dir": str(state_dir),
            "glimpse": {"base_url": self.glimpse_url, "api_key": api_key, "timeout": 10},
            "images": {"order": images, **{n: sections[n] for n in images}},
            "captions": {
                "order": captions or ["langflow", "llm", "template"],
                "langflow": {
                    "base_url": self.url("langflow"),
                    "flow": CAPTION_FLOW,
                    "api_key": LANGFLOW_KEY,
                    "timeout": 10,
                    "tweak_map": {
                        "Prompt-capPr.voice": "persona.voice",
                        "Prompt-capPr.topic": "post.topic",
                        "Prompt-capPr.hashtags": "post.hashtags",
                    },
                },
            },
            "daemon": {"jitter_minutes": 20},
        }
        if llm:
            raw["llm"] = {
                "base_url": self.url("openai") + "/v1",
                "api_key": CHAT_KEY,
                "model": "sandbox-chat",
                "timeout": 10,
            }
        return raw

    def agent_toml_like(
        self, config: AgentConfig, state_dir: Path, *, api_key: str
    ) -> dict[str, Any]:
        """``config``'s shape against this stack, for `simulate`: its persona, its image
        backend order and caption order (each onto its emulator), the router's deadline and
        breaker, each backend's ``cost_usd``, its safety, daemon and log settings. Every URL and
        key is the emulators' own, so nothing of the real services is reached or needed."""
        captions = [c for c in config.captions.order or [] if c != "llm" or config.llm is not None]
        raw = self.agent_toml(
            config.persona,
            state_dir,
            api_key=api_key,
            images=config.images.chain,
            llm=config.llm is not None,
        )
        raw["captions"]["order"] = captions
        images = raw["images"]
        images["deadline_seconds"] = config.images.deadline_seconds
        images["breaker_failures"] = config.images.breaker_failures
        images["breaker_cooldown_minutes"] = config.images.breaker_cooldown_minutes
        for name in config.images.chain:
            cost = getattr(getattr(config.images, name, None), "cost_usd", None)
            if cost is not None:
                images[name] = {**images[name], "cost_usd": cost}
        raw["safety"] = config.safety.model_dump(mode="json")
        raw["daemon"] = config.daemon.model_dump(mode="json")
        raw["log_level"] = config.log_level
        return raw

    async def register(self, name: str, email: str) -> str:
        """Register and verify an agent over HTTP, the way a user does (the 6-digit code comes
        from the emulated mailbox). Returns the API key."""
        from glimpse_agent.glimpse import GlimpseClient

        async with GlimpseClient(self.glimpse_url, clock=self.clock) as client:
            registration = await client.register(name, email)
            await client.verify(self.world.outbox[email])
        return registration.api_key
