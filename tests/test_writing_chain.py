"""The caption chain follows captions.order over real HTTP: a failing source hands over to the
next (logged), a refused caption is regenerated once from the next source, then skipped;
missing sources are skipped with a log line; the template always answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.config import (
    AgentConfig,
    CaptionsSection,
    LangflowSection,
    LLMSection,
    SafetySection,
)
from glimpse_agent.errors import RateLimited, Unavailable
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.sandbox.langflow.app import LangflowState, create_langflow_app
from glimpse_agent.sandbox.openai_chat import ChatState
from glimpse_agent.sandbox.server import LoopbackServer
from glimpse_agent.writing import CaptionRequest, Writing, build_writing
from glimpse_agent.writing.chain import CaptionChain
from glimpse_agent.writing.safety import SafetyFilter

PERSONA = Persona(
    name="mira",
    voice="wistful",
    topics=["lighthouses"],
    art_style="watercolor",
    hashtags=["#aiart", "#sea"],
)
REQUEST = CaptionRequest(topic="lighthouses", image_prompt="a lighthouse", hashtags=["#sea"])
LLM_KEY = "sk-chain-llm-key-2231"


class FakeGlimpse:
    """The two Glimpse helper endpoints, answering from lists."""

    def __init__(self, captions: list[str], optimized: str | None = None) -> None:
        self.captions = captions
        self.optimized = optimized
        self.asked: list[dict[str, Any]] = []

    async def suggest_captions(
        self,
        *,
        image_url: str | None = None,
        prompt: str | None = None,
        hashtags: list[str] | None = None,
    ) -> list[str]:
        self.asked.append({"image_url": image_url, "prompt": prompt, "hashtags": hashtags})
        return self.captions

    async def optimize_prompt(self, prompt: str, *, style: str | None = None) -> str:
        if self.optimized is None:
            raise Unavailable("optimizer down", service="glimpse")
        return self.optimized


@pytest.fixture
def state() -> LangflowState:
    state = LangflowState()
    state.add_flow(endpoint_name="caption")
    state.add_flow(endpoint_name="linky", reply="Sunset! More at https://evil.example/win")
    state.add_flow(endpoint_name="broken", fail=True)
    return state


@pytest.fixture
def langflow(state: LangflowState, base_url: str) -> tuple[LangflowState, str]:
    return state, base_url


@pytest.fixture
def chat_state() -> ChatState:
    return ChatState(api_key=LLM_KEY)


@pytest.fixture
def llm_url(chat: tuple[ChatState, str]) -> str:
    return chat[1]


def build(
    order: list[Any],
    *,
    langflow_url: str | None = None,
    flow: str = "caption",
    llm_url: str | None = None,
    glimpse: FakeGlimpse | None = None,
) -> Writing:
    lf = LangflowSection(base_url=langflow_url, flow=flow, timeout=2) if langflow_url else None
    llm = LLMSection(base_url=llm_url, api_key=LLM_KEY, model="m") if llm_url else None
    config = AgentConfig(
        persona=Path("p.toml"),
        llm=llm,
        captions=CaptionsSection(order=order, langflow=lf),
        safety=SafetySection(max_hashtags=4),
    )
    return build_writing(config, PERSONA, glimpse=glimpse, seed=3)


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_langflow_answers_first_when_it_works(langflow: tuple[LangflowState, str]) -> None:
    """The first source of the order writes the caption; its name comes back with it."""
    _, url = langflow
    writing = build(["langflow", "template"], langflow_url=url)
    with capture_logs() as logs:
        caption = await writing.caption(REQUEST)
    await writing.aclose()
    assert caption is not None and caption.source == "langflow"
    assert events(logs, "caption.ready")[0]["source"] == "langflow"


async def test_langflow_down_hands_over_to_the_llm(llm_url: str) -> None:
    """Langflow down (connection refused): the llm, next in order, captions; failure logged."""
    server = LoopbackServer(create_langflow_app(LangflowState())).start()
    down_url = server.url
    server.stop()
    writing = build(["langflow", "llm", "template"], langflow_url=down_url, llm_url=llm_url)
    with capture_logs() as logs:
        caption = await writing.caption(REQUEST)
    await writing.aclose()
    assert caption is not None and caption.source == "llm"
    failed = events(logs, "caption.source_failed")
    assert [f["source"] for f in failed] == ["langflow"]
    assert failed[0]["kind"] == "Unavailable"
    assert events(logs, "caption.ready")[0]["source"] == "llm"


async def test_component_failure_hands_over_to_glimpse(langflow: tuple[LangflowState, str]) -> None:
    """A 500 from the flow: Glimpse's caption suggestions answer instead."""
    _, url = langflow
    glimpse = FakeGlimpse(["Harbour lights, softly."])
    writing = build(
        ["langflow", "glimpse", "template"], langflow_url=url, flow="broken", glimpse=glimpse
    )
    caption = await writing.caption(REQUEST)
    await writing.aclose()
    assert caption is not None and caption.source == "glimpse"
    assert caption.text.startswith("Harbour lights, softly.")
    assert glimpse.asked[0]["prompt"] == "a lighthouse"


async def test_refused_caption_is_regenerated_from_the_next_source(
    langflow: tuple[LangflowState, str],
) -> None:
    """A flow caption with a link is refused; the retry starts at the next source (template)."""
    _, url = langflow
    writing = build(["langflow", "template"], langflow_url=url, flow="linky")
    with capture_logs() as logs:
        caption = await writing.caption(REQUEST)
    await writing.aclose()
    assert caption is not None and caption.source == "template"
    assert "evil.example" not in caption.text
    assert "url" in str(events(logs, "safety.rejected")[0]["reasons"])


async def test_refused_twice_skips_the_post(langflow: tuple[LangflowState, str]) -> None:
    """With only a source that keeps adding links, the caption is refused twice: None, logged."""
    state, url = langflow
    writing = build(["langflow"], langflow_url=url, flow="linky")
    with capture_logs() as logs:
        assert await writing.caption(REQUEST) is None
    await writing.aclose()
    assert len(state.runs) == 2
    assert events(logs, "writing.skipped")[0]["reason"] == "refused by the safety filter twice"


async def test_every_source_failing_without_template_skips(
    langflow: tuple[LangflowState, str],
) -> None:
    """No template in the order and every source failing: None, with the chain's log line."""
    _, url = langflow
    writing = build(["langflow"], langflow_url=url, flow="broken")
    with capture_logs() as logs:
        assert await writing.caption(REQUEST) is None
    await writing.aclose()
    assert events(logs, "caption.all_sources_failed")


def test_missing_sources_are_skipped_with_a_log_line() -> None:
    """An order naming llm/glimpse without an [llm] section or Glimpse client skips them."""
    with capture_logs() as logs:
        writing = build(["llm", "glimpse", "template"])
    assert writing.chain.order == ["template"]
    assert {e["source"] for e in events(logs, "caption.source_skipped")} == {"llm", "glimpse"}


async def test_template_always_answers_and_carries_hashtags() -> None:
    """With nothing configured the template captions, ending with the requested hashtags."""
    writing = build(["llm", "template"])
    caption = await writing.caption(REQUEST)
    assert caption is not None and caption.source == "template"
    assert caption.text.endswith("#sea")


async def test_missing_hashtags_are_appended_to_a_source_caption(
    langflow: tuple[LangflowState, str],
) -> None:
    """A source caption without the requested hashtags gets them appended (within the cap)."""
    _, url = langflow
    writing = build(["langflow"], langflow_url=url)
    caption = await writing.caption(CaptionRequest("sea", "a sea", ["#sea", "#calm"]))
    await writing.aclose()
    assert caption is not None
    assert caption.text.endswith("#sea #calm")


async def test_consecutive_template_captions_differ() -> None:
    """Two posts in a row never get the same template caption."""
    writing = build(["template"])
    first, second = await writing.caption(REQUEST), await writing.caption(REQUEST)
    assert first is not None and second is not None
    assert first.text != second.text


async def test_image_prompt_uses_glimpse_optimizer_without_llm() -> None:
    """Without an LLM, Glimpse's optimizer refines the template prompt, else the template stands."""
    writing = build(["template"], glimpse=FakeGlimpse([], optimized="lighthouse, refined"))
    assert await writing.image_prompt("lighthouse", None, []) == "lighthouse, refined"
    writing = build(["template"], glimpse=FakeGlimpse([], optimized=None))
    prompt = await writing.image_prompt("lighthouse", None, [])
    assert prompt.startswith("lighthouse, ") and "watercolor" in prompt


class _Scripted:
    """A caption source that plays a script: exceptions to raise, or texts."""

    def __init__(self, name: str, *script: object) -> None:
        self.name = name
        self.script = list(script)
        self.calls = 0

    async def write_caption(self, request: CaptionRequest, attempt: int) -> str:
        self.calls += 1
        step = self.script.pop(0) if self.script else f"a caption from {self.name}"
        if isinstance(step, BaseException):
            raise step
        return str(step)


async def test_a_429_rests_a_caption_source_until_its_retry_after() -> None:
    """Langflow answering 429 with Retry-After: 7200 is not asked for two hours (the next
    source writes meanwhile), then asked again; an absurd Retry-After rests it a day at most."""
    clock = SimulatedClock(utc(2026, 3, 2, 9))
    flow = _Scripted(
        "langflow",
        RateLimited("busy", service="langflow", retry_after=7200),
        "a caption from langflow",
        RateLimited("busy", service="langflow", retry_after=1e15),
    )
    chain = CaptionChain(
        [flow, _Scripted("template")], SafetyFilter(), log=get_logger("t"), clock=clock
    )
    assert (await chain.caption(REQUEST)) is not None
    clock.advance(7199)
    with capture_logs() as logs:
        caption = await chain.caption(REQUEST)
    assert caption is not None and caption.source == "template" and flow.calls == 1
    assert events(logs, "caption.source_resting")
    clock.advance(2)
    caption = await chain.caption(REQUEST)
    assert caption is not None and caption.source == "langflow" and flow.calls == 2
    assert (await chain.caption(REQUEST)) is not None and flow.calls == 3
    clock.advance(timedelta(hours=23, minutes=59))
    assert (await chain.caption(REQUEST)) is not None and flow.calls == 3
    clock.advance(timedelta(minutes=2))
    assert (await chain.caption(REQUEST)) is not None and flow.calls == 4
